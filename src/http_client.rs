//! One blocking HTTP(S) request with a hard overall timeout (ureq 3, rustls, webpki roots),
//! for the http check, webhooks and heartbeats. Errors come back as short phrases a user can
//! act on: `connection refused`, `timed out after 2s`, `TLS: certificate expired`.
//!
//! Redirects are never followed (a health endpoint that redirects says so itself), HTTP error
//! statuses are responses, not errors, and the body is read up to a cap.

use crate::util::{os_error, secs};
use rustls::pki_types::CertificateDer;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
        }
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy)]
pub enum Tls<'a> {
    /// Against the bundled web PKI roots (Mozilla's).
    Verify,
    /// Not at all (self-signed certificates).
    NoVerify,
    /// Against these CA certificates only (a `ca_file`, read with [`read_ca_file`] by the
    /// caller: a ca_file that cannot be used is the config's problem, not the server's).
    CaCerts(&'a [CertificateDer<'static>]),
}

#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    /// Sent with POST (with `content_type`).
    pub body: Option<&'a [u8]>,
    pub content_type: Option<&'a str>,
    /// For the whole exchange: resolve, connect, TLS, request, response, body.
    pub timeout: Duration,
    pub tls: Tls<'a>,
    /// 4 or 6: only that address family.
    pub ip_version: Option<u8>,
    /// Connect here instead of resolving the URL's host (which stays the Host and SNI name).
    pub resolve: Option<IpAddr>,
    /// Read at most this many bytes of the body.
    pub max_body: u64,
    /// Honour HTTP(S)_PROXY from the environment (webhooks may need it; health checks of a
    /// local service must not go through a proxy).
    pub env_proxy: bool,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The Location header, for a redirect's message.
    pub location: Option<String>,
}

/// Connect to one fixed address, whatever the URL's host (`resolve:`).
#[derive(Debug)]
struct FixedResolver(IpAddr);

impl Resolver for FixedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        let mut out = self.empty();
        out.push(SocketAddr::new(self.0, port));
        Ok(out)
    }
}

/// The largest `ca_file` read: Debian's whole bundle of public roots weighs about 220 KiB.
pub const MAX_CA_FILE_BYTES: u64 = 4 << 20;

/// The certificates of a `ca_file` (PEM), read under the rules for files the config names: a
/// regular file (a FIFO never blocks the check, `/dev/zero` is never read), at most
/// [`MAX_CA_FILE_BYTES`], PEM holding at least one certificate usable as a CA (only those are
/// returned). `Err` is a short reason naming the file (http and tls_cert checks: their result
/// is then unknown, never a FAIL: a config mistake must not restart a healthy service).
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    use crate::files::ReadError;
    use rustls::pki_types::pem::PemObject;
    let shown = path.display();
    let pem = crate::files::read_capped(path, MAX_CA_FILE_BYTES, true).map_err(|e| match e {
        ReadError::Missing => format!("ca_file {shown} does not exist"),
        ReadError::NotRegular(kind) => {
            format!("ca_file {shown} is {kind}, not a regular file")
        }
        ReadError::TooLarge(n) => format!(
            "ca_file {shown} is too large ({n} bytes, more than {} MiB): give a PEM file of CA certificates",
            MAX_CA_FILE_BYTES >> 20
        ),
        ReadError::Io(e) => format!("cannot read ca_file {shown}: {e}"),
    })?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&pem) {
        match item {
            Ok(c) => certs.push(c),
            Err(e) => return Err(format!("ca_file {shown} is not valid PEM: {e}")),
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "ca_file {shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    // the ones webpki can take as a trust anchor (both checks would drop the others)
    let total = certs.len();
    certs.retain(|c| rustls::RootCertStore::empty().add(c.clone()).is_ok());
    if certs.is_empty() {
        return Err(format!(
            "ca_file {shown} holds no certificate that can be used as a CA: none of its {total} can be read as X.509"
        ));
    }
    Ok(certs)
}

/// Send one request. `Err` is a short, user-facing reason.
pub fn send(req: &Request) -> Result<Response, String> {
    let tls = match req.tls {
        Tls::Verify => ureq::tls::TlsConfig::builder().build(),
        Tls::NoVerify => ureq::tls::TlsConfig::builder()
            .disable_verification(true)
            .build(),
        Tls::CaCerts(certs) => {
            let certs: Vec<_> = certs
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build()
        }
    };
    let family = match req.ip_version {
        Some(4) => ureq::config::IpFamily::Ipv4Only,
        Some(6) => ureq::config::IpFamily::Ipv6Only,
        _ => ureq::config::IpFamily::Any,
    };
    let mut config = ureq::config::Config::builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(req.timeout))
        .ip_family(family)
        .tls_config(tls)
        .user_agent(concat!("neon-watchdog/", env!("CARGO_PKG_VERSION")))
        .accept_encoding("identity")
        .max_idle_connections(0);
    if !req.env_proxy {
        config = config.proxy(None);
    }
    let config = config.build();
    let agent = match req.resolve {
        Some(ip) => ureq::Agent::with_parts(config, DefaultConnector::default(), FixedResolver(ip)),
        None => ureq::Agent::new_with_config(config),
    };

    let mut builder = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(req.url);
    for (k, v) in req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    if let (Some(ct), Some(_)) = (req.content_type, req.body) {
        builder = builder.header("Content-Type", ct);
    }
    let body: Vec<u8> = req.body.map(<[u8]>::to_vec).unwrap_or_default();
    let request = builder
        .body(body)
        .map_err(|e| format!("invalid request: {e}"))?;
    let mut response = agent.run(request).map_err(|e| reason(&e, req))?;
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    if req.method != Method::Head {
        use std::io::Read;
        let mut reader = response.body_mut().as_reader();
        if let Err(e) = (&mut reader).take(req.max_body).read_to_end(&mut body) {
            return Err(io_reason(&e, req));
        }
    }
    Ok(Response {
        status,
        body,
        location,
    })
}

fn timed_out(req: &Request) -> String {
    format!("timed out after {}", secs(req.timeout))
}

/// A ureq error as a short reason.
fn reason(e: &ureq::Error, req: &Request) -> String {
    match e {
        ureq::Error::Timeout(_) => timed_out(req),
        ureq::Error::Io(io) => io_reason(io, req),
        ureq::Error::HostNotFound => cannot_resolve(req, None),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Rustls(t) => format!("TLS: {}", tls_reason(t, req)),
        ureq::Error::Tls(t) => format!("TLS: {t}"),
        ureq::Error::BadUri(u) => format!("bad URL: {u}"),
        other => other.to_string(),
    }
}

/// `cannot resolve HOST`, with the resolver's reason (`temporary failure in name resolution`
/// means DNS could not be asked; `name or service not known` means it has no such name).
fn cannot_resolve(req: &Request, detail: Option<&str>) -> String {
    let host = host_of(req.url);
    let mut reason = match req.ip_version {
        Some(v) => format!("cannot resolve {host} (to an IPv{v} address)"),
        None => format!("cannot resolve {host}"),
    };
    if let Some(d) = detail.map(str::trim).filter(|d| !d.is_empty()) {
        // lower-case like the other reasons (`connection refused`)
        let mut chars = d.chars();
        if let Some(first) = chars.next() {
            reason.push_str(": ");
            reason.extend(first.to_lowercase());
            reason.push_str(chars.as_str());
        }
    }
    reason
}

fn io_reason(e: &std::io::Error, req: &Request) -> String {
    use std::io::ErrorKind;
    // A failed getaddrinfo comes back from ureq's resolver as a plain io error, only an empty
    // answer is `HostNotFound`; std words every lookup failure this way.
    let text = e.to_string();
    if let Some(detail) = text.strip_prefix("failed to lookup address information:") {
        return cannot_resolve(req, Some(detail));
    }
    // rustls errors arrive wrapped in io errors from the TLS stream
    if let Some(inner) = e.get_ref() {
        if let Some(t) = inner.downcast_ref::<rustls::Error>() {
            return format!("TLS: {}", tls_reason(t, req));
        }
        if let Some(u) = inner.downcast_ref::<ureq::Error>() {
            return reason(u, req);
        }
    }
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => timed_out(req),
        _ => os_error(e),
    }
}

fn tls_reason(e: &rustls::Error, req: &Request) -> String {
    use rustls::{CertificateError, Error};
    match e {
        Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not valid yet".to_string()
            }
            CertificateError::UnknownIssuer => {
                "invalid certificate (unknown issuer; self-signed? set ca_file, or tls_verify: false)"
                    .to_string()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("certificate is not valid for {}", host_of(req.url))
            }
            CertificateError::BadSignature => "invalid certificate (bad signature)".to_string(),
            other => format!("invalid certificate ({other:?})"),
        },
        other => other.to_string(),
    }
}

/// Is `url` an http(s) URL that requests can be sent to? The error says what is wrong without
/// quoting the URL (its path may be a secret).
pub fn check_url(url: &str) -> Result<(), String> {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Err(format!(
            "{:?} is not an http:// or https:// URL",
            origin(&without_userinfo(url))
        ));
    };
    if host_of(url).is_empty() || rest.starts_with('/') {
        return Err("has no host: write it as https://host:port/path".to_string());
    }
    let uri: ureq::http::Uri = url.parse().map_err(|e| {
        format!(
            "is not a valid URL ({e}): spaces and other special characters must be percent-encoded"
        )
    })?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let host_port = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let port_text = match host_port.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => None, // bare IPv6: rejected by parse
        Some((_, p)) => Some(p),
        None => None,
    };
    if let Some(p) = port_text {
        match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => {}
            _ => return Err(format!("port {p} is out of range 1..65535")),
        }
    }
    Ok(())
}

/// The host of a URL, without userinfo or port (for messages).
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

/// `scheme://host[:port]`, without userinfo, path or query: how a webhook is named in logs
/// (its path is often the secret, as in Slack's hook URLs).
pub fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    if scheme.is_empty() {
        host_port.to_string()
    } else {
        format!("{scheme}://{host_port}")
    }
}

/// The URL with its userinfo (`user:password@`) replaced by `***@`.
pub fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{tail}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts() {
        assert_eq!(host_of("http://u:p@example.com:8080/x?y"), "example.com");
        assert_eq!(host_of("https://[::1]:443/"), "::1");
        assert_eq!(host_of("http://h"), "h");
        assert_eq!(
            origin("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com"
        );
        assert_eq!(origin("http://u:p@h:1/x"), "http://h:1");
        assert_eq!(
            without_userinfo("http://user:pw@h:1/x@y"),
            "http://***@h:1/x@y"
        );
        assert_eq!(without_userinfo("http://h/x"), "http://h/x");
        assert!(check_url("https://h:8443/x?y=1").is_ok());
        assert!(check_url("http://[::1]:80/").is_ok());
        for bad in [
            "http://ho st/x",
            "http://h/SEC RET",
            "http://[::1/x",
            "http://h:99999/x",
            "ftp://h/",
            "http:///x",
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(!e.contains("SEC RET"), "{e}");
        }
        assert_eq!(
            check_url("http://h:99999/x").unwrap_err(),
            "port 99999 is out of range 1..65535"
        );
    }

    #[test]
    fn lookup_failures_say_which_host() {
        let req = Request {
            method: Method::Get,
            url: "http://user:pw@api.example.com:8080/health",
            headers: &[],
            body: None,
            content_type: None,
            timeout: Duration::from_secs(2),
            tls: Tls::Verify,
            ip_version: None,
            resolve: None,
            max_body: 1,
            env_proxy: false,
        };
        let gai = |detail: &str| {
            std::io::Error::other(format!("failed to lookup address information: {detail}"))
        };
        assert_eq!(
            io_reason(&gai("Name or service not known"), &req),
            "cannot resolve api.example.com: name or service not known"
        );
        assert_eq!(
            reason(
                &ureq::Error::Io(gai("Temporary failure in name resolution")),
                &req
            ),
            "cannot resolve api.example.com: temporary failure in name resolution"
        );
        let v6 = Request {
            ip_version: Some(6),
            ..req.clone()
        };
        assert_eq!(
            reason(&ureq::Error::HostNotFound, &v6),
            "cannot resolve api.example.com (to an IPv6 address)"
        );
        assert_eq!(
            io_reason(
                &std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
                &req
            ),
            "connection refused"
        );
    }
}
