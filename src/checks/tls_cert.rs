//! tls_cert: the certificate a TLS server presents verifies, is for the expected name and
//! does not expire within `min_days_left` days.
//!
//! One connection (every address of the host tried, as tcp_port does) and one TLS handshake
//! with rustls, within the check's timeout. The certificate is verified by rustls-webpki, the
//! verifier the http check uses, against the bundled Mozilla roots or only the `ca_file`. The
//! verifier is wrapped so that it also records the certificate the server presented and what
//! verification said of it: a certificate that fails is still read (`x509`), and the FAIL
//! says which way it failed, with its dates and names. The wrapper decides exactly as webpki
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
    error: Option<rustls::Error>,
}

/// The webpki verifier, recording what it was shown and what it decided.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("cannot set up certificate verification: {e}"))?;
    let recorder = Arc::new(Recorder {
        inner,
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
    TimedOut,
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
    let io = |e: std::io::Error| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => HandshakeError::TimedOut,
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset => HandshakeError::Closed,
        _ => HandshakeError::Io(e),
    };
    while conn.is_handshaking() {
        let now = Instant::now();
        if now >= deadline {
            return Err(HandshakeError::TimedOut);
        }
        let left = Some(deadline - now);
        let _ = stream.set_read_timeout(left);
        let _ = stream.set_write_timeout(left);
        if conn.wants_write() {
            conn.write_tls(stream).map_err(io)?;
            continue;
        }
        if conn.read_tls(stream).map_err(io)? == 0 {
            return Err(HandshakeError::Closed);
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
        HandshakeError::TimedOut => format!(
            "TLS handshake timed out after {} (connected to {addr}, no TLS answer: is it a TLS port?)",
            crate::util::secs(timeout)
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

/// The verdict on the certificate the server presented, at `now` (seconds since the epoch).
fn judge(c: &TlsCertCheck, seen: &Seen, against: &str, now: i64) -> CheckResult {
    let name = &c.server_name;
    let info = x509::parse(&seen.cert);
    let mut r = match (&seen.error, &info) {
        (None, None) => CheckResult::unknown(format!(
            "certificate for {name} verifies, but its expiry date could not be read"
        )),
        (None, Some(info)) => {
            let left = info.not_after.saturating_sub(now);
            if left < i64::from(c.min_days_left) * DAY {
                let when = if left < DAY {
                    "in less than a day".to_string()
                } else {
                    format!("in {}", days(left.div_euclid(DAY)))
                };
                CheckResult::fail(format!(
                    "certificate for {name} expires {when} ({}; min_days_left {})",
                    x509::date(info.not_after),
                    c.min_days_left
                ))
            } else {
                CheckResult::ok()
            }
        }
        (Some(e), info) => CheckResult::fail(failure(name, e, info.as_ref(), against, now)),
    };
    if let Some(info) = &info {
        r.figures.days_left = Some(info.not_after.saturating_sub(now).div_euclid(DAY));
        r.figures.expires = Some(x509::date(info.not_after));
    }
    r
}

/// Why verification refused the certificate, in words, with its dates and names when they
/// could be read.
fn failure(
    name: &str,
    e: &rustls::Error,
    info: Option<&x509::CertInfo>,
    against: &str,
    now: i64,
) -> String {
    use CertificateError as C;
    let rustls::Error::InvalidCertificate(ce) = e else {
        return format!("certificate for {name} does not verify: {e}");
    };
    let from_rustls = |t: &UnixTime| i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    match ce {
        C::Expired | C::ExpiredContext { .. } => {
            let not_after = match (info, ce) {
                (Some(i), _) => Some(i.not_after),
                (None, C::ExpiredContext { not_after, .. }) => Some(from_rustls(not_after)),
                _ => None,
            };
            match not_after {
                Some(t) => {
                    let ago = now.saturating_sub(t).div_euclid(DAY);
                    let when = if ago < 1 {
                        "less than a day ago".to_string()
                    } else {
                        format!("{} ago", days(ago))
                    };
                    format!("certificate for {name} expired {when} ({})", x509::date(t))
                }
                None => format!("certificate for {name} has expired"),
            }
        }
        C::NotValidYet | C::NotValidYetContext { .. } => {
            let not_before = match (info, ce) {
                (Some(i), _) => Some(i.not_before),
                (None, C::NotValidYetContext { not_before, .. }) => Some(from_rustls(not_before)),
                _ => None,
            };
            match not_before {
                Some(t) => format!(
                    "certificate for {name} is not valid before {} (is this machine's clock right?)",
                    x509::date(t)
                ),
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
                return format!("certificate is not for {name} (it names no host)");
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
    }
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
        let seen = Seen {
            cert: test_cert(),
            error: None,
        };
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
        let garbage = Seen {
            cert: vec![0x30, 0x00],
            error: None,
        };
        let r = judge(&check(14), &garbage, "", NOW);
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.figures.days_left, None);
    }

    /// A handshake that fails after the certificate verified is not an OK: it fails on the
    /// handshake's reason, and still carries the certificate's figures.
    #[test]
    fn a_handshake_failing_after_verification_fails() {
        let seen = Seen {
            cert: test_cert(),
            error: None,
        };
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
        let refused = Seen {
            cert: test_cert(),
            error: Some(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        };
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
        let r = outcome(&check(14), None, Err(HandshakeError::TimedOut), "", NOW, at);
        assert_eq!(
            r.reason,
            "TLS handshake timed out after 2s (connected to 127.0.0.1:8443, no TLS answer: is it a TLS port?)"
        );
    }

    #[test]
    fn failures_say_which_way() {
        let exp = rustls::Error::InvalidCertificate(CertificateError::Expired);
        let i = info(NOW - 90 * DAY, NOW - 3 * DAY - 3600);
        assert_eq!(
            failure("svc.example.com", &exp, Some(&i), "", NOW),
            "certificate for svc.example.com expired 3 days ago (2026-12-03)"
        );
        let i = info(NOW - 90 * DAY, NOW - 3600);
        assert_eq!(
            failure("svc.example.com", &exp, Some(&i), "", NOW),
            "certificate for svc.example.com expired less than a day ago (2026-12-06)"
        );
        let ctx = rustls::Error::InvalidCertificate(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(NOW as u64)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs((NOW - DAY) as u64)),
        });
        assert_eq!(
            failure("x", &ctx, None, "", NOW),
            "certificate for x expired 1 day ago (2026-12-05)"
        );
        let early = rustls::Error::InvalidCertificate(CertificateError::NotValidYet);
        let i = info(NOW + 2 * DAY, NOW + 60 * DAY);
        assert_eq!(
            failure("svc.example.com", &early, Some(&i), "", NOW),
            "certificate for svc.example.com is not valid before 2026-12-08 (is this machine's clock right?)"
        );
        let wrong = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(
            failure("svc.example.com", &wrong, Some(&info(0, NOW)), "", NOW),
            "certificate is for other.example.com, www.other.example.com, not svc.example.com"
        );
        let mut many = info(0, NOW);
        many.dns_names = (0..8).map(|n| format!("h{n}.example.com")).collect();
        assert_eq!(
            failure("svc.example.com", &wrong, Some(&many), "", NOW),
            "certificate is for h0.example.com, h1.example.com, h2.example.com, h3.example.com, h4.example.com and 3 more, not svc.example.com"
        );
        let mut cn_only = info(0, NOW);
        cn_only.dns_names.clear();
        assert_eq!(
            failure("svc.example.com", &wrong, Some(&cn_only), "", NOW),
            "certificate is for cn.example.com, not svc.example.com"
        );
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let mut own = info(0, NOW);
        own.self_signed = true;
        assert_eq!(
            failure("svc.example.com", &unknown, Some(&own), "not signed by a CA in /etc/ca.pem", NOW),
            "certificate for svc.example.com does not verify: unknown issuer (self-signed, not signed by a CA in /etc/ca.pem)"
        );
        assert_eq!(
            failure("svc.example.com", &unknown, None, "not signed by a CA in /etc/ca.pem", NOW),
            "certificate for svc.example.com does not verify: unknown issuer (not signed by a CA in /etc/ca.pem)"
        );
    }
}
