//! tls_cert: the certificate a TLS server presents verifies, is for the expected name and
//! does not expire within `min_days_left` days.
//!
//! One connection (every address of the host tried, as tcp_port does) and one TLS handshake
//! with rustls, within the check's timeout. The certificate is verified by rustls-webpki, the
//! verifier the http check uses, against the bundled Mozilla roots or only the `ca_file`. The
//! verifier is wrapped so that it also records the certificate the server presented and what
//! verification said of it: a certificate that fails is still read (`x509`, with RustCrypto's
//! `x509-cert`: what a server sends is hostile input, read as root, by a maintained parser),
//! and the FAIL says which way it failed, with its dates and names. The wrapper decides exactly as webpki
//! does; the connection is closed right after the handshake, nothing is sent over it.

mod x509;

use super::CheckResult;
use crate::config::TlsCertCheck;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const DAY: i64 = 86_400;
/// The most names of a certificate a message lists.
const MAX_NAMES_SHOWN: usize = 5;

/// What the server presented, and what verification said of it.
#[derive(Debug, Clone)]
struct Seen {
    cert: Vec<u8>,
    /// The other certificates the server sent, in its order (DER).
    intermediates: Vec<Vec<u8>>,
    /// The subjects of the trust anchors verified against (see `x509::CertInfo::subject`):
    /// where the chain the server sent stops being the server's business.
    anchors: Arc<Vec<Vec<u8>>>,
    error: Option<rustls::Error>,
}

/// The webpki verifier, recording what it was shown and what it decided.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    anchors: Arc<Vec<Vec<u8>>>,
    seen: Mutex<Option<Seen>>,
}

impl Recorder {
    fn seen(&self) -> Option<Seen> {
        self.seen.lock().ok().and_then(|s| s.clone())
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let r = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(Seen {
                cert: end_entity.as_ref().to_vec(),
                intermediates: intermediates.iter().map(|c| c.as_ref().to_vec()).collect(),
                anchors: self.anchors.clone(),
                error: r.as_ref().err().cloned(),
            });
        }
        r
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

pub fn check(c: &TlsCertCheck, timeout: Duration) -> CheckResult {
    let deadline = Instant::now() + timeout;
    // A check that cannot be set up (a ca_file that cannot be read or holds no CA) says
    // nothing about the server: unknown, as a command check whose program is missing, so a
    // mistake in the config never restarts a healthy service.
    let (recorder, config, against) = match setup(c) {
        Ok(s) => s,
        Err(e) => return CheckResult::unknown(e),
    };
    let name = match ServerName::try_from(c.server_name.clone()) {
        Ok(n) => n,
        // validated when the config was loaded
        Err(_) => return CheckResult::unknown(format!("{} is not a server name", c.server_name)),
    };
    let (mut stream, addr) = match super::tcp::connect(&c.host, c.port, timeout, deadline) {
        Ok(s) => s,
        Err(e) => return CheckResult::fail(e),
    };
    let handshake = handshake(&mut stream, config, name, deadline);
    let mut r = outcome(
        c,
        recorder.seen(),
        handshake,
        &against,
        now(),
        (addr, timeout),
    );
    r.addr = Some(addr.to_string());
    r
}

/// The verdict from what the verifier saw and how the handshake ended: a certificate it
/// refused is the reason the handshake failed; a handshake that failed after the certificate
/// verified (the server's key does not match it, the server went silent) fails on its own
/// reason, with the certificate's figures.
fn outcome(
    c: &TlsCertCheck,
    seen: Option<Seen>,
    handshake: Result<(), HandshakeError>,
    against: &str,
    now: i64,
    (addr, timeout): (SocketAddr, Duration),
) -> CheckResult {
    match (seen, handshake) {
        (Some(seen), Ok(())) => judge(c, &seen, against, now),
        (Some(seen), Err(_)) if seen.error.is_some() => judge(c, &seen, against, now),
        (Some(seen), Err(e)) => CheckResult {
            figures: judge(c, &seen, against, now).figures,
            ..CheckResult::fail(handshake_reason(&e, addr, timeout))
        },
        (None, Err(e)) => CheckResult::fail(handshake_reason(&e, addr, timeout)),
        // rustls verifies the certificate in every handshake that completes
        (None, Ok(())) => CheckResult::unknown("the TLS handshake completed without a certificate"),
    }
}

/// The recorder, the client config using it, and what it verifies against (for messages).
fn setup(c: &TlsCertCheck) -> Result<(Arc<Recorder>, Arc<ClientConfig>, String), String> {
    let mut roots = RootCertStore::empty();
    let against = match &c.ca_file {
        Some(f) => {
            roots.add_parsable_certificates(crate::http_client::read_ca_file(f)?);
            format!("not signed by a CA in {}", f.display())
        }
        None => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            "not signed by a CA of the bundled Mozilla roots; self-signed or a private CA? set ca_file".to_string()
        }
    };
    let anchors = Arc::new(roots.roots.iter().map(|a| a.subject.to_vec()).collect());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
    let recorder = Arc::new(Recorder {
        inner,
        anchors,
        seen: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    Ok((recorder, Arc::new(config), against))
}

/// Why a handshake did not complete.
enum HandshakeError {
    /// With how many bytes the server had sent by then: none (not a TLS server, or a hung
    /// one) or some (an answer too slow to complete in time).
    TimedOut {
        received: usize,
    },
    Closed,
    Tls(rustls::Error),
    Io(std::io::Error),
}

/// A TLS handshake over `stream`, done by `deadline`. Each read and write waits at most until
/// the deadline, and the deadline is checked between them: a server that dribbles its
/// handshake a byte at a time costs the timeout, no more.
fn handshake(
    stream: &mut TcpStream,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    deadline: Instant,
) -> Result<(), HandshakeError> {
    let mut conn = ClientConnection::new(config, name).map_err(HandshakeError::Tls)?;
    let mut received = 0usize;
    let io = |e: std::io::Error, received: usize| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => HandshakeError::TimedOut { received },
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset => HandshakeError::Closed,
        _ => HandshakeError::Io(e),
    };
    while conn.is_handshaking() {
        let now = Instant::now();
        if now >= deadline {
            return Err(HandshakeError::TimedOut { received });
        }
        let left = Some(deadline - now);
        let _ = stream.set_read_timeout(left);
        let _ = stream.set_write_timeout(left);
        if conn.wants_write() {
            conn.write_tls(stream).map_err(|e| io(e, received))?;
            continue;
        }
        match conn.read_tls(stream).map_err(|e| io(e, received))? {
            0 => return Err(HandshakeError::Closed),
            n => received = received.saturating_add(n),
        }
        if let Err(e) = conn.process_new_packets() {
            // tell the server why (an alert), without waiting on it
            let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = conn.write_tls(stream);
            return Err(HandshakeError::Tls(e));
        }
    }
    // say goodbye, without waiting for the answer
    conn.send_close_notify();
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = conn.write_tls(stream);
    Ok(())
}

/// An enum variant's name as words: `HandshakeFailure` -> `handshake failure`.
fn spaced(debug: String) -> String {
    let mut out = String::with_capacity(debug.len() + 8);
    for (i, ch) in debug.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

fn handshake_reason(e: &HandshakeError, addr: SocketAddr, timeout: Duration) -> String {
    match e {
        HandshakeError::TimedOut { received: 0 } => format!(
            "TLS handshake timed out after {} (connected to {addr}, no TLS answer: is it a TLS port?)",
            crate::util::secs(timeout)
        ),
        HandshakeError::TimedOut { received } => format!(
            "TLS handshake incomplete after {} (connected to {addr}, {received} bytes received: the server answers too slowly or stalled)",
            crate::util::secs(timeout)
        ),
        // rustls takes handshake messages of up to 64 KiB; the certificate message is the
        // one that grows (thousands of names, a long chain)
        HandshakeError::Tls(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::HandshakePayloadTooLarge,
        )) => format!(
            "TLS handshake failed: {addr} sent a handshake message larger than this client takes (64 KiB, rustls's limit): its certificate chain is too large (thousands of names?)"
        ),
        HandshakeError::Closed => format!(
            "TLS handshake failed: {addr} closed the connection (is it a TLS port?)"
        ),
        HandshakeError::Tls(rustls::Error::InvalidMessage(m)) => format!(
            "TLS handshake failed: {addr} sent something that is not TLS ({}): is it a TLS port?",
            spaced(format!("{m:?}"))
        ),
        HandshakeError::Tls(rustls::Error::AlertReceived(a)) => {
            format!(
                "TLS handshake failed: {addr} refused it (alert: {})",
                spaced(format!("{a:?}"))
            )
        }
        // the certificate verified, its key did not sign the handshake
        HandshakeError::Tls(rustls::Error::InvalidCertificate(ce)) => {
            format!("TLS handshake failed: {}", words(ce))
        }
        HandshakeError::Tls(t) => format!("TLS handshake failed: {t}"),
        HandshakeError::Io(io) => format!("TLS handshake failed: {}", crate::util::os_error(io)),
    }
}

/// Seconds since the epoch.
fn now() -> i64 {
    match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// "1 day", "5 days".
fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_string()
    } else {
        format!("{n} days")
    }
}

/// The intermediates the server sent that link the leaf to a trust anchor, in order, found
/// as webpki builds its path: an issuer that is a trust anchor ends it (so a root the server
/// also sends is not judged: a root's expiry is the trust store's business), else the first
/// certificate sent with that subject that is valid at `now`. By names only (webpki checked
/// the signatures): it chooses what the figures and messages are about, never what is trusted.
/// A stale cross-signed certificate the server still sends, which the path does not use,
/// is not judged either.
fn chain<'a>(
    leaf: &x509::CertInfo,
    sent: &'a [x509::CertInfo],
    anchors: &[Vec<u8>],
    now: i64,
) -> Vec<&'a x509::CertInfo> {
    let mut used = vec![false; sent.len()];
    let mut out: Vec<&x509::CertInfo> = Vec::new();
    let mut issuer = &leaf.issuer;
    while !anchors.contains(issuer) {
        let next = sent.iter().enumerate().find(|(i, c)| {
            !used[*i] && c.subject == *issuer && c.not_before <= now && now <= c.not_after
        });
        let Some((i, c)) = next else { break };
        used[i] = true;
        out.push(c);
        issuer = &c.issuer;
    }
    out
}

/// `intermediate CA Example R3`: how a reason names a CA certificate of the chain.
fn ca_name(c: &x509::CertInfo) -> String {
    match &c.common_name {
        Some(cn) => format!("intermediate CA {cn}"),
        None => "an intermediate CA (without a common name)".to_string(),
    }
}

/// "in 5 days", "in less than a day".
fn within(left: i64) -> String {
    if left < DAY {
        "in less than a day".to_string()
    } else {
        format!("in {}", days(left.div_euclid(DAY)))
    }
}

/// "3 days ago", "less than a day ago".
fn ago(t: i64, now: i64) -> String {
    let ago = now.saturating_sub(t).div_euclid(DAY);
    if ago < 1 {
        "less than a day ago".to_string()
    } else {
        format!("{} ago", days(ago))
    }
}

/// The verdict on the certificate the server presented, at `now` (seconds since the epoch).
/// Once it verifies, the chain is judged by its earliest notAfter, the leaf's or that of an
/// intermediate the server sent: the chain stops verifying when the first of them expires.
/// The figures are that certificate's, and the reason names it when it is not the leaf.
fn judge(c: &TlsCertCheck, seen: &Seen, against: &str, now: i64) -> CheckResult {
    let name = &c.server_name;
    let info = x509::parse(&seen.cert);
    let sent: Vec<x509::CertInfo> = seen
        .intermediates
        .iter()
        .filter_map(|d| x509::parse(d))
        .collect();
    // the notAfter the figures show
    let mut shown = info.as_ref().map(|i| i.not_after);
    let mut r = match (&seen.error, &info) {
        (None, None) => CheckResult::unknown(format!(
            "certificate for {name} verifies, but its expiry date could not be read"
        )),
        (None, Some(info)) => {
            let path = chain(info, &sent, &seen.anchors, now);
            // the leaf when it is among the earliest
            let first = path
                .iter()
                .filter(|ca| ca.not_after < info.not_after)
                .min_by_key(|ca| ca.not_after);
            let not_after = first.map_or(info.not_after, |ca| ca.not_after);
            shown = Some(not_after);
            let left = not_after.saturating_sub(now);
            if left < i64::from(c.min_days_left) * DAY {
                let what = match first {
                    None => format!("certificate for {name}"),
                    Some(ca) => format!("{} in the chain for {name}", ca_name(ca)),
                };
                CheckResult::fail(format!(
                    "{what} expires {} ({}; min_days_left {})",
                    within(left),
                    x509::date(not_after),
                    c.min_days_left
                ))
            } else {
                CheckResult::ok()
            }
        }
        (Some(e), info) => {
            let (reason, expired_at) = failure(name, e, info.as_ref(), &sent, against, now);
            if expired_at.is_some() {
                shown = expired_at;
            }
            CheckResult::fail(reason)
        }
    };
    if let Some(t) = shown {
        r.figures.days_left = Some(t.saturating_sub(now).div_euclid(DAY));
        r.figures.expires = Some(x509::date(t));
    }
    r
}

/// Why verification refused the certificate, in words, with its dates and names when they
/// could be read; and the notAfter of the certificate that expired, when that is the reason
/// (the leaf, or an intermediate CA of the chain: webpki checks each one's dates).
fn failure(
    name: &str,
    e: &rustls::Error,
    info: Option<&x509::CertInfo>,
    sent: &[x509::CertInfo],
    against: &str,
    now: i64,
) -> (String, Option<i64>) {
    use CertificateError as C;
    let rustls::Error::InvalidCertificate(ce) = e else {
        return (format!("certificate for {name} does not verify: {e}"), None);
    };
    let from_rustls = |t: &UnixTime| i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    // which certificate a date of webpki's belongs to: the leaf when its date is that (or
    // when it cannot be read), else the intermediate sent with it
    let whose = |t: i64, of: fn(&x509::CertInfo) -> i64| -> Option<String> {
        match info {
            Some(i) if of(i) == t => None,
            None => None,
            Some(_) => Some(match sent.iter().find(|c| of(c) == t) {
                Some(ca) => format!(
                    "certificate for {name} does not verify: the chain's {}",
                    ca_name(ca)
                ),
                None => {
                    format!("certificate for {name} does not verify: a CA certificate of the chain")
                }
            }),
        }
    };
    let reason = match ce {
        C::Expired | C::ExpiredContext { .. } => {
            // webpki's own date first: it may be an intermediate's
            let not_after = match ce {
                C::ExpiredContext { not_after, .. } => Some(from_rustls(not_after)),
                _ => info
                    .map(|i| i.not_after)
                    .filter(|t| *t < now)
                    .or_else(|| sent.iter().map(|c| c.not_after).filter(|t| *t < now).min()),
            };
            return match not_after {
                Some(t) => {
                    let what = whose(t, |c| c.not_after)
                        .unwrap_or_else(|| format!("certificate for {name}"));
                    (
                        format!("{what} expired {} ({})", ago(t, now), x509::date(t)),
                        Some(t),
                    )
                }
                None => (format!("certificate for {name} has expired"), None),
            };
        }
        C::NotValidYet | C::NotValidYetContext { .. } => {
            let not_before = match ce {
                C::NotValidYetContext { not_before, .. } => Some(from_rustls(not_before)),
                _ => info
                    .map(|i| i.not_before)
                    .filter(|t| *t > now)
                    .or_else(|| sent.iter().map(|c| c.not_before).filter(|t| *t > now).max()),
            };
            match not_before {
                Some(t) => {
                    let what = whose(t, |c| c.not_before)
                        .unwrap_or_else(|| format!("certificate for {name}"));
                    format!(
                        "{what} is not valid before {} (is this machine's clock right?)",
                        x509::date(t)
                    )
                }
                None => format!("certificate for {name} is not valid yet"),
            }
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            let mut names = info.map(x509::CertInfo::names).unwrap_or_default();
            if names.is_empty() {
                if let C::NotValidForNameContext { presented, .. } = ce {
                    names.clone_from(presented);
                }
            }
            if names.is_empty() {
                return (
                    format!("certificate is not for {name} (it names no host)"),
                    None,
                );
            }
            let mut shown = names
                .iter()
                .take(MAX_NAMES_SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if names.len() > MAX_NAMES_SHOWN {
                shown.push_str(&format!(" and {} more", names.len() - MAX_NAMES_SHOWN));
            }
            format!("certificate is for {shown}, not {name}")
        }
        _ => {
            let self_signed = info.is_some_and(|i| i.self_signed);
            let unknown_issuer = match ce {
                C::UnknownIssuer => true,
                // a self-signed certificate made as a CA (`openssl req -x509` makes them so)
                // is refused as a server's before its issuer is looked for: the issuer is
                // what to fix
                C::Other(o) => self_signed && o.to_string() == "CaUsedAsEndEntity",
                _ => false,
            };
            if unknown_issuer {
                let own = if self_signed { "self-signed, " } else { "" };
                format!("certificate for {name} does not verify: unknown issuer ({own}{against})")
            } else {
                format!("certificate for {name} does not verify: {}", words(ce))
            }
        }
    };
    (reason, None)
}

/// What webpki found wrong with a certificate, in words (the causes not told apart above).
fn words(ce: &CertificateError) -> String {
    use CertificateError as C;
    match ce {
        C::BadSignature => "bad signature".to_string(),
        C::Revoked => "revoked".to_string(),
        C::BadEncoding => "it is malformed".to_string(),
        C::UnhandledCriticalExtension => {
            "it has a critical extension this client does not know".to_string()
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "it is not for TLS servers (its extended key usage)".to_string()
        }
        C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "its signature algorithm is not supported".to_string()
        }
        C::Other(o) => match o.to_string().as_str() {
            "CaUsedAsEndEntity" => "it is a CA certificate, not a server's".to_string(),
            "EndEntityUsedAsCa" => "it was signed by a server certificate, not a CA".to_string(),
            other => other.to_string(),
        },
        other => rustls::Error::InvalidCertificate(other.clone()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Verdict;

    fn check(min_days_left: u32) -> TlsCertCheck {
        TlsCertCheck {
            host: "127.0.0.1".into(),
            port: 443,
            server_name: "svc.example.com".into(),
            min_days_left,
            ca_file: None,
        }
    }

    fn info(not_before: i64, not_after: i64) -> x509::CertInfo {
        x509::CertInfo {
            not_before,
            not_after,
            common_name: Some("cn.example.com".into()),
            dns_names: vec!["other.example.com".into(), "www.other.example.com".into()],
            ip_addrs: vec![],
            self_signed: false,
            subject: b"leaf".to_vec(),
            issuer: b"inter".to_vec(),
        }
    }

    /// A CA certificate named `cn` issued by `issuer`.
    fn ca(cn: &str, issuer: &str, not_before: i64, not_after: i64) -> x509::CertInfo {
        x509::CertInfo {
            not_before,
            not_after,
            common_name: Some(cn.into()),
            dns_names: vec![],
            ip_addrs: vec![],
            self_signed: cn == issuer,
            subject: cn.as_bytes().to_vec(),
            issuer: issuer.as_bytes().to_vec(),
        }
    }

    /// What the server presented: `cert`, nothing else, verified against no anchor.
    fn presented(cert: Vec<u8>, error: Option<rustls::Error>) -> Seen {
        Seen {
            cert,
            intermediates: vec![],
            anchors: Arc::new(vec![]),
            error,
        }
    }

    const NOW: i64 = 1_796_558_400; // 2026-12-06 12:00:00Z

    /// The test certificate of `x509` (notAfter 2026-12-06 12:00:00Z, svc.example.com).
    fn test_cert() -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        let pem = include_str!("tls_cert/x509_test_cert.pem");
        CertificateDer::from_pem_slice(pem.as_bytes())
            .map(|c| c.as_ref().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn days_left_count_whole_days() {
        let seen = presented(test_cert(), None);
        // the test certificate's notAfter is 2026-12-06 12:00:00Z
        let at = |days: f64| NOW - (days * DAY as f64) as i64;
        let r = judge(&check(14), &seen, "", at(5.5));
        assert_eq!(r.verdict, Verdict::FAILING);
        assert_eq!(
            r.reason,
            "certificate for svc.example.com expires in 5 days (2026-12-06; min_days_left 14)"
        );
        assert_eq!(r.figures.days_left, Some(5));
        assert_eq!(r.figures.expires.as_deref(), Some("2026-12-06"));
        assert!(judge(&check(5), &seen, "", at(5.5)).is_ok());
        assert!(!judge(&check(5), &seen, "", at(4.9)).is_ok());
        let r = judge(&check(1), &seen, "", at(0.5));
        assert_eq!(
            r.reason,
            "certificate for svc.example.com expires in less than a day (2026-12-06; min_days_left 1)"
        );
        assert_eq!(r.figures.days_left, Some(0));
        assert!(judge(&check(0), &seen, "", at(0.5)).is_ok());
        assert_eq!(
            judge(&check(0), &seen, "", at(-1.5)).figures.days_left,
            Some(-2)
        );
        let r = judge(&check(14), &seen, "", at(1.0));
        assert_eq!(
            r.reason,
            "certificate for svc.example.com expires in 1 day (2026-12-06; min_days_left 14)"
        );
        let garbage = presented(vec![0x30, 0x00], None);
        let r = judge(&check(14), &garbage, "", NOW);
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.figures.days_left, None);
    }

    /// A handshake that fails after the certificate verified is not an OK: it fails on the
    /// handshake's reason, and still carries the certificate's figures.
    #[test]
    fn a_handshake_failing_after_verification_fails() {
        let seen = presented(test_cert(), None);
        let at = ("127.0.0.1:8443".parse().unwrap(), Duration::from_secs(2));
        let r = outcome(
            &check(14),
            Some(seen.clone()),
            Ok(()),
            "",
            NOW - 30 * DAY,
            at,
        );
        assert!(r.is_ok());
        let r = outcome(
            &check(14),
            Some(seen),
            Err(HandshakeError::Tls(rustls::Error::InvalidCertificate(
                CertificateError::BadSignature,
            ))),
            "",
            NOW - 30 * DAY,
            at,
        );
        assert_eq!(r.verdict, Verdict::FAILING);
        assert_eq!(r.reason, "TLS handshake failed: bad signature");
        assert_eq!(r.figures.days_left, Some(30));
        let refused = presented(
            test_cert(),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        );
        let r = outcome(
            &check(14),
            Some(refused),
            Err(HandshakeError::Tls(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))),
            "not signed by a CA in /ca.pem",
            NOW - 30 * DAY,
            at,
        );
        assert_eq!(
            r.reason,
            "certificate for svc.example.com does not verify: unknown issuer (not signed by a CA in /ca.pem)"
        );
        let timed_out = |received| {
            outcome(
                &check(14),
                None,
                Err(HandshakeError::TimedOut { received }),
                "",
                NOW,
                at,
            )
            .reason
        };
        assert_eq!(
            timed_out(0),
            "TLS handshake timed out after 2s (connected to 127.0.0.1:8443, no TLS answer: is it a TLS port?)"
        );
        assert_eq!(
            timed_out(7),
            "TLS handshake incomplete after 2s (connected to 127.0.0.1:8443, 7 bytes received: the server answers too slowly or stalled)"
        );
    }

    #[test]
    fn failures_say_which_way() {
        let exp = rustls::Error::InvalidCertificate(CertificateError::Expired);
        let i = info(NOW - 90 * DAY, NOW - 3 * DAY - 3600);
        assert_eq!(
            failure("svc.example.com", &exp, Some(&i), &[], "", NOW).0,
            "certificate for svc.example.com expired 3 days ago (2026-12-03)"
        );
        let i = info(NOW - 90 * DAY, NOW - 3600);
        assert_eq!(
            failure("svc.example.com", &exp, Some(&i), &[], "", NOW).0,
            "certificate for svc.example.com expired less than a day ago (2026-12-06)"
        );
        let ctx = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(NOW as u64)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs((NOW - DAY) as u64)),
        });
        assert_eq!(
            failure("x", &ctx, None, &[], "", NOW).0,
            "certificate for x expired 1 day ago (2026-12-05)"
        );
        let early = rustls::Error::InvalidCertificate(CertificateError::NotValidYet);
        let i = info(NOW + 2 * DAY, NOW + 60 * DAY);
        assert_eq!(
            failure("svc.example.com", &early, Some(&i), &[], "", NOW).0,
            "certificate for svc.example.com is not valid before 2026-12-08 (is this machine's clock right?)"
        );
        let wrong = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(
            failure("svc.example.com", &wrong, Some(&info(0, NOW)), &[], "", NOW).0,
            "certificate is for other.example.com, www.other.example.com, not svc.example.com"
        );
        let mut many = info(0, NOW);
        many.dns_names = (0..8).map(|n| format!("h{n}.example.com")).collect();
        assert_eq!(
            failure("svc.example.com", &wrong, Some(&many), &[], "", NOW).0,
            "certificate is for h0.example.com, h1.example.com, h2.example.com, h3.example.com, h4.example.com and 3 more, not svc.example.com"
        );
        let mut cn_only = info(0, NOW);
        cn_only.dns_names.clear();
        assert_eq!(
            failure("svc.example.com", &wrong, Some(&cn_only), &[], "", NOW).0,
            "certificate is for cn.example.com, not svc.example.com"
        );
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let mut own = info(0, NOW);
        own.self_signed = true;
        assert_eq!(
            failure("svc.example.com", &unknown, Some(&own), &[], "not signed by a CA in /etc/ca.pem", NOW).0,
            "certificate for svc.example.com does not verify: unknown issuer (self-signed, not signed by a CA in /etc/ca.pem)"
        );
        assert_eq!(
            failure("svc.example.com", &unknown, None, &[], "not signed by a CA in /etc/ca.pem", NOW).0,
            "certificate for svc.example.com does not verify: unknown issuer (not signed by a CA in /etc/ca.pem)"
        );
    }
    /// The path runs from the leaf's issuer through the certificates sent, taking the one
    /// valid now among those of one subject (a stale cross-signed copy is skipped), and ends
    /// at a trust anchor (a root sent too is not part of it).
    #[test]
    fn the_chain_is_the_path_to_an_anchor() {
        let leaf = info(NOW - DAY, NOW + 60 * DAY);
        let stale = ca("inter", "old-root", NOW - 900 * DAY, NOW - 10 * DAY);
        let inter = ca("inter", "root", NOW - 90 * DAY, NOW + 30 * DAY);
        let root = ca("root", "root", NOW - 900 * DAY, NOW + 5 * DAY);
        let unrelated = ca("other", "root", NOW - 90 * DAY, NOW + DAY);
        let sent = [stale, unrelated, inter, root];
        let anchors = vec![b"root".to_vec()];
        let path = chain(&leaf, &sent, &anchors, NOW);
        assert_eq!(path.len(), 1);
        assert_eq!(path[0].not_after, NOW + 30 * DAY);
        // without the anchor, the root sent is walked into, and it ends there (no loop)
        let path = chain(&leaf, &sent, &[], NOW);
        assert_eq!(path.len(), 2);
        assert_eq!(chain(&leaf, &[], &anchors, NOW).len(), 0);
    }

    /// An intermediate that expired or is not valid yet is named with its own date; the
    /// figures then show the expired one's.
    #[test]
    fn an_intermediate_out_of_its_dates_is_named() {
        let at = |t: i64| UnixTime::since_unix_epoch(Duration::from_secs(t as u64));
        let leaf = info(NOW - DAY, NOW + 60 * DAY);
        let sent = [ca("Example R3", "root", NOW - 90 * DAY, NOW - 2 * DAY - 60)];
        let ctx = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: at(NOW),
            not_after: at(NOW - 2 * DAY - 60),
        });
        assert_eq!(
            failure("svc.example.com", &ctx, Some(&leaf), &sent, "", NOW),
            (
                "certificate for svc.example.com does not verify: the chain's intermediate CA Example R3 expired 2 days ago (2026-12-04)".to_string(),
                Some(NOW - 2 * DAY - 60)
            )
        );
        // without a date from webpki, the one expired certificate sent
        let bare = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert_eq!(
            failure("svc.example.com", &bare, Some(&leaf), &sent, "", NOW).1,
            Some(NOW - 2 * DAY - 60)
        );
        let early = rustls::Error::InvalidCertificate(CertificateError::NotValidYetContext {
            time: at(NOW),
            not_before: at(NOW + 3 * DAY),
        });
        let sent = [ca("Example R3", "root", NOW + 3 * DAY, NOW + 90 * DAY)];
        assert_eq!(
            failure("svc.example.com", &early, Some(&leaf), &sent, "", NOW),
            (
                "certificate for svc.example.com does not verify: the chain's intermediate CA Example R3 is not valid before 2026-12-09 (is this machine's clock right?)".to_string(),
                None
            )
        );
        // a date matching none of the certificates sent
        assert_eq!(
            failure("svc.example.com", &ctx, Some(&leaf), &[], "", NOW).0,
            "certificate for svc.example.com does not verify: a CA certificate of the chain expired 2 days ago (2026-12-04)"
        );
    }
}
