//! Just enough of X.509 (RFC 5280) in DER to say what a certificate is: its validity dates, its
//! subject's common name and its subject alternative names (DNS names and IP addresses).
//!
//! The bytes come from whatever server the check connects to, before (or without) any
//! verification: every read is bounds-checked and anything unexpected gives `None`, never a
//! panic. rustls-webpki, which verifies the certificate, keeps these fields to itself; a
//! full X.509 crate would be a large dependency for four fields.

use std::net::IpAddr;

/// What the tls_cert check reports of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Seconds since the Unix epoch (negative before 1970).
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

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT Version`, `[3] EXPLICIT Extensions` of TBSCertificate.
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
/// GeneralName `[2] dNSName IA5String`, `[7] iPAddress OCTET STRING` (implicit tags).
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;
/// 2.5.29.17 subjectAltName
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
/// 2.5.4.3 commonName
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
/// A name longer than this is cut (it only goes into a message).
const MAX_NAME_CHARS: usize = 253;

/// One tag-length-value off the front of `input`: the tag and the value. Only what DER allows
/// (definite lengths in the fewest bytes are not insisted on, but indefinite ones and
/// multi-byte tags are refused).
fn tlv<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = (rest.get(..n)?, rest.get(n..)?);
        rest = after;
        bytes.iter().fold(0usize, |l, b| (l << 8) | usize::from(*b))
    };
    let value = rest.get(..len)?;
    *input = rest.get(len..)?;
    Some((tag, value))
}

/// The next element, which must have `tag`.
fn expect<'a>(input: &mut &'a [u8], tag: u8) -> Option<&'a [u8]> {
    match tlv(input)? {
        (t, v) if t == tag => Some(v),
        _ => None,
    }
}

/// Read a DER certificate. `None` when it is not one (or not one this reader understands).
pub fn parse(der: &[u8]) -> Option<CertInfo> {
    let mut input = der;
    let mut cert = expect(&mut input, SEQUENCE)?;
    let mut tbs = expect(&mut cert, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tlv(&mut tbs)?;
    }
    expect(&mut tbs, INTEGER)?; // serialNumber
    expect(&mut tbs, SEQUENCE)?; // signature algorithm
    let issuer = expect(&mut tbs, SEQUENCE)?;
    let mut validity = expect(&mut tbs, SEQUENCE)?;
    let not_before = time(&mut validity)?;
    let not_after = time(&mut validity)?;
    let subject = expect(&mut tbs, SEQUENCE)?;
    expect(&mut tbs, SEQUENCE)?; // subjectPublicKeyInfo
    let mut info = CertInfo {
        not_before,
        not_after,
        common_name: common_name(subject),
        dns_names: Vec::new(),
        ip_addrs: Vec::new(),
        self_signed: issuer == subject,
        subject: subject.to_vec(),
        issuer: issuer.to_vec(),
    };
    // [1] issuerUniqueID, [2] subjectUniqueID, [3] extensions
    while !tbs.is_empty() {
        let (tag, mut value) = tlv(&mut tbs)?;
        if tag == EXTENSIONS {
            extensions(expect(&mut value, SEQUENCE)?, &mut info)?;
        }
    }
    Some(info)
}

fn extensions(mut exts: &[u8], info: &mut CertInfo) -> Option<()> {
    while !exts.is_empty() {
        let mut ext = expect(&mut exts, SEQUENCE)?;
        let oid = expect(&mut ext, OID)?;
        if ext.first() == Some(&BOOLEAN) {
            tlv(&mut ext)?; // critical
        }
        let mut value = expect(&mut ext, OCTET_STRING)?;
        if oid == OID_SAN {
            let mut names = expect(&mut value, SEQUENCE)?;
            while !names.is_empty() {
                match tlv(&mut names)? {
                    (DNS_NAME, name) => info.dns_names.push(text(name)),
                    (IP_ADDRESS, ip) => {
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
    }
    Some(())
}

/// The subject's (last) commonName, when it is a string type.
fn common_name(mut name: &[u8]) -> Option<String> {
    let mut found = None;
    while !name.is_empty() {
        let mut rdn = expect(&mut name, SET)?;
        while !rdn.is_empty() {
            let mut atv = expect(&mut rdn, SEQUENCE)?;
            let oid = expect(&mut atv, OID)?;
            let (tag, value) = tlv(&mut atv)?;
            // UTF8String, PrintableString, T61String, IA5String
            if oid == OID_CN && matches!(tag, 0x0c | 0x13 | 0x14 | 0x16) {
                found = Some(text(value));
            }
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

/// UTCTime (`YYMMDDHHMMSSZ`, 1950..2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), as RFC 5280
/// requires them, in seconds since the epoch.
fn time(input: &mut &[u8]) -> Option<i64> {
    let (tag, v) = tlv(input)?;
    let digits = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    let (year, rest) = match (tag, v.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(v.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, v.get(2..)?)
        }
        (GENERALIZED_TIME, 15) => (digits(v.get(..4)?)?, v.get(4..)?),
        _ => return None,
    };
    if rest.get(10) != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(rest.get(i..i + 2)?);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (H. Hinnant's
/// algorithm; `year` is at most 9999 here).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        assert_eq!(common_name(&info.subject), info.common_name);
        assert_eq!(
            info.names(),
            ["svc.example.com", "www.svc.example.com", "127.0.0.1", "::1"]
        );
    }

    #[test]
    fn dates_both_ways() {
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

    #[test]
    fn times_as_rfc_5280_writes_them() {
        let t = |tag: u8, s: &str| {
            let mut v = vec![tag, s.len() as u8];
            v.extend_from_slice(s.as_bytes());
            time(&mut v.as_slice())
        };
        assert_eq!(t(UTC_TIME, "700101000000Z"), Some(0));
        assert_eq!(t(UTC_TIME, "491231235959Z"), Some(2_524_607_999));
        assert_eq!(t(UTC_TIME, "500101000000Z"), Some(-631_152_000));
        assert_eq!(
            t(GENERALIZED_TIME, "99991231235959Z"),
            Some(253_402_300_799)
        );
        for bad in [
            "700101000000",
            "7001010000000",
            "701301000000Z",
            "700230000000Z",
            "700101240000Z",
            "7001010000+0Z",
            "70010100000aZ",
        ] {
            assert_eq!(t(UTC_TIME, bad), None, "{bad}");
        }
        assert_eq!(t(GENERALIZED_TIME, "700101000000Z"), None);
        assert_eq!(t(GENERALIZED_TIME, "20230229000000Z"), None);
        assert!(t(GENERALIZED_TIME, "20240229000000Z").is_some());
    }

    /// Hostile input: every truncation, every one-byte change and random bytes give an
    /// answer or `None`, never a panic (nor a huge allocation).
    #[test]
    fn hostile_bytes_never_panic() {
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
