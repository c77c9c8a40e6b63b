//! What the tls_cert check reports of a certificate: its validity dates, its subject's common
//! name, its subject alternative names (DNS names and IP addresses), and the Names that link
//! a chain.
//!
//! The bytes come from whatever server the check connects to, before (or without) any
//! verification, and are read as root: they are parsed by RustCrypto's `x509-cert` (with `der`),
//! a maintained, fuzzed, panic-free DER/X.509 reader, instead of the 385 lines of DER reading
//! written here before. Its measured cost (README, tls_cert): the release binary grows by
//! 657 KB (+9.3%, 7.09 to 7.75 MB) and a release build by 8% of CPU time; kept, since the
//! bytes are a hostile server's and the reader runs as root. rustls-webpki, which verifies
//! the certificate, keeps these fields to itself.
//! Anything it cannot read gives `None`, never a panic; the check then says the certificate
//! verified but its dates could not be read (unknown), or why webpki refused it.
//!
//! `x509-cert` reads what RFC 5280 allows, which is what webpki accepts too, with one edge: its
//! times start in 1970 (a certificate valid from before 1970 reads as `None`).

use std::net::IpAddr;
use std::time::Duration;
use x509_cert::der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::name::Name;
use x509_cert::time::Time;
use x509_cert::Certificate;

/// What the tls_cert check reports of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addrs: Vec<IpAddr>,
    /// Issued by its own subject.
    pub self_signed: bool,
    /// The subject's and the issuer's Name, DER without the outer SEQUENCE header (as
    /// webpki's trust anchors keep `subject`): how a chain links certificates.
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
}

impl CertInfo {
    /// The names the certificate is for, SANs first (what clients match), else the subject's
    /// common name: `svc.example.com, www.svc.example.com`.
    pub fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self.dns_names.clone();
        out.extend(self.ip_addrs.iter().map(IpAddr::to_string));
        if out.is_empty() {
            out.extend(self.common_name.clone());
        }
        out
    }
}

/// 2.5.4.3 commonName
const OID_CN: x509_cert::der::oid::ObjectIdentifier =
    x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");
/// A name longer than this is cut (it only goes into a message).
const MAX_NAME_CHARS: usize = 253;

/// Read a DER certificate. `None` when it is not one (or one `x509-cert` refuses).
pub fn parse(der: &[u8]) -> Option<CertInfo> {
    let cert = Certificate::from_der(der).ok()?;
    let tbs = cert.tbs_certificate();
    let validity = tbs.validity();
    let subject = name_bytes(tbs.subject())?;
    let issuer = name_bytes(tbs.issuer())?;
    let mut info = CertInfo {
        not_before: seconds(validity.not_before)?,
        not_after: seconds(validity.not_after)?,
        common_name: common_name(tbs.subject()),
        dns_names: Vec::new(),
        ip_addrs: Vec::new(),
        self_signed: subject == issuer,
        subject,
        issuer,
    };
    // a subjectAltName that cannot be read (or is given twice) makes the certificate unread,
    // as webpki refuses it
    if let Some((_, san)) = tbs.get_extension::<SubjectAltName>().ok()? {
        for name in san.0 {
            match name {
                GeneralName::DnsName(n) => info.dns_names.push(text(n.as_bytes())),
                GeneralName::IpAddress(ip) => {
                    let ip = ip.as_bytes();
                    if let Ok(v4) = <[u8; 4]>::try_from(ip) {
                        info.ip_addrs.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(ip) {
                        info.ip_addrs.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    Some(info)
}

/// Seconds since the epoch of a certificate time.
fn seconds(t: Time) -> Option<i64> {
    let d: Duration = t.to_unix_duration();
    i64::try_from(d.as_secs()).ok()
}

/// A Name as DER, without its SEQUENCE header: its RDNs, each encoded.
fn name_bytes(name: &Name) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for rdn in name.iter_rdn() {
        out.extend(rdn.to_der().ok()?);
    }
    Some(out)
}

/// The subject's (last) commonName, when it is a string type.
fn common_name(name: &Name) -> Option<String> {
    let mut found = None;
    for atv in name.iter() {
        let string = matches!(
            atv.value.tag(),
            Tag::Utf8String | Tag::PrintableString | Tag::TeletexString | Tag::Ia5String
        );
        if atv.oid == OID_CN && string {
            found = Some(text(atv.value.value()));
        }
    }
    found
}

/// Bytes from the certificate as text fit for a log line: UTF-8 (lossy), control characters
/// replaced, cut at [`MAX_NAME_CHARS`].
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_NAME_CHARS)
        .collect()
}

/// The UTC date of `secs` since the epoch: `2026-12-06`.
pub fn date(secs: i64) -> String {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made once with the openssl CLI (a P-256 key signed by a test CA):
    /// notBefore 2026-01-02 03:04:05Z, notAfter 2026-12-06 12:00:00Z, CN svc.example.com,
    /// SAN DNS:svc.example.com, DNS:www.svc.example.com, IP:127.0.0.1, IP:::1.
    const CERT_PEM: &str = include_str!("x509_test_cert.pem");

    fn der() -> Vec<u8> {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        CertificateDer::from_pem_slice(CERT_PEM.as_bytes())
            .map(|c| c.as_ref().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn reads_dates_and_names() {
        let info = parse(&der()).expect("the test certificate parses");
        assert_eq!(date(info.not_before), "2026-01-02");
        assert_eq!(info.not_before % 86_400, 3 * 3600 + 4 * 60 + 5);
        assert_eq!(date(info.not_after), "2026-12-06");
        assert_eq!(info.not_after, 1_796_558_400);
        assert_eq!(info.common_name.as_deref(), Some("svc.example.com"));
        assert_eq!(info.dns_names, ["svc.example.com", "www.svc.example.com"]);
        assert_eq!(
            info.ip_addrs,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse::<IpAddr>().unwrap()
            ]
        );
        assert!(!info.self_signed);
        assert_ne!(info.subject, info.issuer);
        // the subject's Name, its RDNs as DER: the CN's text is in it
        assert!(info.subject.windows(15).any(|w| w == b"svc.example.com"));
        assert_eq!(
            info.subject[0], 0x31,
            "an RDN, a SET: the SEQUENCE header is off"
        );
        assert_eq!(
            info.names(),
            ["svc.example.com", "www.svc.example.com", "127.0.0.1", "::1"]
        );
    }

    #[test]
    fn dates_both_ways() {
        /// Days since 1970-01-01 of a date (H. Hinnant's algorithm), the inverse of `date`.
        fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
            let y = if month <= 2 { year - 1 } else { year };
            let era = y.div_euclid(400);
            let yoe = y - era * 400;
            let mp = (month + 9) % 12;
            let doy = (153 * mp + 2) / 5 + day - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe - 719_468
        }
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(date(days_from_civil(9999, 12, 31) * 86_400), "9999-12-31");
        for d in [-800_000, -1, 0, 59, 60, 10_000, 2_932_896] {
            let s = date(d * 86_400);
            let (y, m, dd) = (
                &s[..s.len() - 6],
                &s[s.len() - 5..s.len() - 3],
                &s[s.len() - 2..],
            );
            let back = days_from_civil(y.parse().unwrap(), m.parse().unwrap(), dd.parse().unwrap());
            assert_eq!(back, d, "{s}");
        }
    }

    /// Hostile input: every truncation, every one-byte change and random bytes give an
    /// answer or `None`, never a panic (nor a huge allocation).
    #[test]
    fn hostile_bytes_never_panic() {
        const SEQUENCE: u8 = 0x30;
        let good = der();
        assert!(!good.is_empty());
        for n in 0..good.len() {
            assert_eq!(parse(&good[..n]), None, "a truncation at {n} parsed");
        }
        let mut bytes = good.clone();
        for i in 0..bytes.len() {
            for v in [0x00, 0x7f, 0x80, 0x84, 0xff, bytes[i] ^ 0x01] {
                let old = bytes[i];
                bytes[i] = v;
                let _ = parse(&bytes);
                bytes[i] = old;
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = parse(&junk);
            let mut framed = vec![SEQUENCE, 0x82, (len >> 8) as u8, len as u8];
            framed.extend_from_slice(&junk);
            let _ = parse(&framed);
        }
        // lengths that claim more than there is
        assert_eq!(parse(&[SEQUENCE, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(parse(&[SEQUENCE, 0x80]), None);
        assert_eq!(parse(&[0x1f, 0x01, 0x00]), None);
    }
}
