//! http: one request answers as expected: a healthy status (`expect_status`, or any 2xx/3xx),
//! and `body_contains` in the first `max_body_bytes` of the body. Redirects are not followed.
//! A `ca_file` that cannot be used makes the result unknown, not a FAIL.

use super::CheckResult;
use crate::config::HttpCheck;
use crate::http_client::{self, Tls};
use std::time::Duration;

pub fn check(h: &HttpCheck, timeout: Duration) -> CheckResult {
    let ca_certs;
    let tls = match (&h.ca_file, h.tls_verify) {
        (_, false) => Tls::NoVerify,
        (Some(f), true) => {
            // a ca_file that cannot be used says nothing about the server: unknown (nothing
            // counted, no action), as a command check whose program is missing
            ca_certs = match http_client::read_ca_file(f) {
                Ok(c) => c,
                Err(e) => return CheckResult::unknown(e),
            };
            Tls::CaCerts(&ca_certs)
        }
        (None, true) => Tls::Verify,
    };
    let req = http_client::Request {
        method: h.method,
        url: &h.url,
        headers: &h.headers,
        body: (h.method == http_client::Method::Post).then_some(&[][..]),
        content_type: None,
        timeout,
        tls,
        ip_version: h.ip_version,
        resolve: h.resolve,
        max_body: h.max_body_bytes,
        env_proxy: false,
    };
    let resp = match http_client::send(&req) {
        Ok(r) => r,
        Err(e) => return CheckResult::fail(e),
    };
    let status = resp.status;
    let healthy_status = if h.expect_status.is_empty() {
        (200..400).contains(&status)
    } else {
        h.expect_status.contains(&status)
    };
    let mut r = if !healthy_status {
        let mut reason = format!("HTTP {status}");
        if (300..400).contains(&status) {
            if let Some(loc) = &resp.location {
                let loc: String = loc.chars().take(100).collect();
                reason.push_str(&format!(" (redirect to {loc}, not followed)"));
            }
        } else if !h.expect_status.is_empty() {
            let want: Vec<String> = h.expect_status.iter().map(u16::to_string).collect();
            reason.push_str(&format!(" (expected {})", want.join(", ")));
        }
        CheckResult::fail(reason)
    } else if let Some(needle) = &h.body_contains {
        let body = String::from_utf8_lossy(&resp.body);
        if body.contains(needle.as_str()) {
            CheckResult::ok()
        } else {
            let read = if resp.body.len() as u64 >= h.max_body_bytes {
                format!(" (in the first {} bytes)", h.max_body_bytes)
            } else {
                String::new()
            };
            CheckResult::fail(format!("body does not contain {needle:?}{read}"))
        }
    } else {
        CheckResult::ok()
    };
    r.figures.status = Some(status);
    r
}
