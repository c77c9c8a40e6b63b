//! The tls_cert check against real TLS servers: `openssl s_server` serving certificates the
//! openssl CLI makes in the test (a CA, leaves it signed with chosen validity dates and names,
//! one self-signed), plus servers in this test process for what a TLS server must not do
//! (never answer, answer plain text, drip, and a stand-in that sends a malformed certificate,
//! which no real server can be made to serve). Exit codes, the FAIL reasons and the figures on the
//! check line are asserted.

use crate::harness::*;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

const DAY: u64 = 86_400;

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let st = status_of(Command::new("openssl").args(args).current_dir(dir));
    assert!(st.success(), "openssl {args:?} failed");
}

/// `base` moved by `days` (may be fractional; negative: the past).
fn at(base: SystemTime, days: f64) -> SystemTime {
    let by = Duration::from_secs_f64(days.abs() * DAY as f64);
    if days < 0.0 {
        base - by
    } else {
        base + by
    }
}

/// `2026-12-06`: the UTC date of `t`, as the check writes it.
fn date(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()[..10].to_string()
}

/// `20261206120000Z`: what `openssl ca -startdate/-enddate` take.
fn asn1_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .replace('T', "")
}

/// Each leaf certificate: file stem, subjectAltName, valid from and until (days from now).
/// Half days keep the whole days left exact however long the test takes.
const LEAVES: &[(&str, &str, f64, f64)] = &[
    ("fresh", "DNS:svc.example.com", -1.0, 60.5),
    ("soon", "DNS:soon.test", -1.0, 5.5),
    (
        "other",
        "DNS:other.example.com,DNS:www.other.example.com",
        -1.0,
        60.5,
    ),
    ("expired", "DNS:old.test", -30.0, -3.5),
    ("future", "DNS:future.test", 2.5, 60.0),
];

/// Made in the test's directory, once per test (EC keys: fast): `ca.pem` (the test CA),
/// `NAME.pem` for each of [`LEAVES`], signed by it with `openssl ca` (which sets both
/// dates), all with the key `leaf.key`; and `self.pem` (`self.key`), self-signed for
/// self.test. Returns the time the validity dates count from.
fn certificates(t: &Test) -> SystemTime {
    let now = SystemTime::now();
    let d = t.dir();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-keyout", "ca.key"];
    ca.extend(ec);
    ca.extend([
        "-out",
        "ca.pem",
        "-days",
        "90",
        "-subj",
        "/CN=neon-tls-test-ca",
    ]);
    openssl(d, &ca);
    let mut csr = vec!["req", "-new", "-nodes", "-keyout", "leaf.key"];
    csr.extend(ec);
    csr.extend(["-out", "leaf.csr", "-subj", "/CN=neon-tls-test-leaf"]);
    openssl(d, &csr);
    t.write(
        "ca.cnf",
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
         default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n",
    );
    t.write("index.txt", "");
    t.write("serial", "1000\n");
    for (name, san, from, until) in LEAVES {
        let ext = format!("{name}.ext");
        t.write(&ext, &format!("subjectAltName={san}\n"));
        let (start, end) = (asn1_time(at(now, *from)), asn1_time(at(now, *until)));
        let out = format!("{name}.pem");
        openssl(
            d,
            &[
                "ca",
                "-batch",
                "-notext",
                "-config",
                "ca.cnf",
                "-cert",
                "ca.pem",
                "-keyfile",
                "ca.key",
                "-in",
                "leaf.csr",
                "-out",
                &out,
                "-startdate",
                &start,
                "-enddate",
                &end,
                "-extfile",
                &ext,
            ],
        );
    }
    let mut own = vec!["req", "-x509", "-nodes", "-keyout", "self.key"];
    own.extend(ec);
    own.extend([
        "-out",
        "self.pem",
        "-days",
        "60",
        "-subj",
        "/CN=self.test",
        "-addext",
        "subjectAltName=DNS:self.test",
    ]);
    openssl(d, &own);
    now
}

/// `openssl s_server` on 127.0.0.1 serving `cert` (with `key`); `sni`: a second certificate
/// for clients that ask for that name (SNI), `(name, cert)`.
fn tls_server(t: &Test, cert: &str, key: &str, sni: Option<(&str, &str)>) -> (ChildGuard, u16) {
    let port = free_port();
    let mut cmd = Command::new("openssl");
    cmd.arg("s_server")
        .arg("-accept")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(t.path(cert))
        .arg("-key")
        .arg(t.path(key))
        .args(["-www", "-quiet"]);
    if let Some((name, cert2)) = sni {
        cmd.args(["-servername", name])
            .arg("-cert2")
            .arg(t.path(cert2))
            .arg("-key2")
            .arg(t.path(key));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let guard = ChildGuard::spawn(cmd);
    wait_for_port(port, EVENT_LIMIT);
    (guard, port)
}

/// A port that accepts connections and never says a word (nor closes them).
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    port
}

/// A port that answers every connection in plain HTTP, not TLS.
fn plain_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    port
}

/// One pass over every way a certificate or a server can fail, each target one case: the SNI
/// picks the certificate (`sni` passes only if `server_name` is sent), a name mismatch lists
/// the certificate's names, an IP host is matched as an IP, 5 days left fails the default 14
/// and passes 3, expired and not-yet-valid say their dates, a self-signed certificate and one
/// checked against the Mozilla roots do not verify (unknown issuer, and against what), and
/// refused, silent and plain-text ports say so.
#[test]
fn expiry_names_and_verification_are_told_apart() {
    let t = Test::new();
    let made = certificates(&t);
    // svc.example.com (fresh) only to clients that send that SNI; other.example.com otherwise
    let (_sni, sni) = tls_server(
        &t,
        "other.pem",
        "leaf.key",
        Some(("svc.example.com", "fresh.pem")),
    );
    let (_fresh, fresh) = tls_server(&t, "fresh.pem", "leaf.key", None);
    let (_soon, soon) = tls_server(&t, "soon.pem", "leaf.key", None);
    let (_expired, expired) = tls_server(&t, "expired.pem", "leaf.key", None);
    let (_future, future) = tls_server(&t, "future.pem", "leaf.key", None);
    let (_own, own) = tls_server(&t, "self.pem", "self.key", None);
    let (silent, plain, dead) = (silent_server(), plain_server(), free_port());
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: sni
    checks: [{{tls_cert: "127.0.0.1:{sni}", server_name: svc.example.com, ca_file: "{{dir}}/ca.pem"}}]
    action: none
  - name: wrong-name
    checks: [{{tls_cert: "127.0.0.1:{sni}", server_name: api.example.com, ca_file: "{{dir}}/ca.pem"}}]
    action: none
  - name: ip-host
    checks: [{{tls_cert: "127.0.0.1:{fresh}", ca_file: "{{dir}}/ca.pem"}}]
    action: none
  - name: soon
    checks: [{{tls_cert: "127.0.0.1:{soon}", server_name: soon.test, ca_file: "{{dir}}/ca.pem"}}]
    action: none
  - name: soon-3
    checks: [{{tls_cert: "127.0.0.1:{soon}", server_name: soon.test, ca_file: "{{dir}}/ca.pem", min_days_left: 3}}]
    action: none
  - name: expired
    checks: [{{tls_cert: "127.0.0.1:{expired}", server_name: old.test, ca_file: "{{dir}}/ca.pem", min_days_left: 0}}]
    action: none
  - name: future
    checks: [{{tls_cert: "127.0.0.1:{future}", server_name: future.test, ca_file: "{{dir}}/ca.pem"}}]
    action: none
  - name: self-signed
    checks: [{{tls_cert: "127.0.0.1:{own}", server_name: self.test, ca_file: "{{dir}}/ca.pem"}}]
    action: none
  - name: public-roots
    checks: [{{tls_cert: "127.0.0.1:{fresh}", server_name: svc.example.com}}]
    action: none
  - name: refused
    checks: [{{tls_cert: "127.0.0.1:{dead}"}}]
    action: none
  - name: silent
    checks: [{{tls_cert: "127.0.0.1:{silent}", timeout_seconds: 1}}]
    action: none
  - name: plain
    checks: [{{tls_cert: "127.0.0.1:{plain}"}}]
    action: none
"#
    ));
    let ca = t.path("ca.pem").display().to_string();
    let out = t.run(&["check"]);
    out.assert_code(2)
        .assert_line_contains(
            &["result=OK", "target=sni "],
            &format!(
                "check=\"tls_cert 127.0.0.1:{sni} (name svc.example.com)\" result=OK"
            ),
        )
        .assert_line_contains(
            &["result=OK", "target=sni "],
            &format!("days_left=60 expires={}", date(at(made, 60.5))),
        )
        .assert_line_contains(
            &["result=FAIL", "target=wrong-name "],
            "err=\"certificate is for other.example.com, www.other.example.com, not api.example.com\"",
        )
        .assert_line_contains(
            &["result=FAIL", "target=ip-host "],
            "err=\"certificate is for svc.example.com, not 127.0.0.1\"",
        )
        .assert_line_contains(
            &["result=FAIL", "target=soon "],
            &format!(
                "days_left=5 expires={} err=\"certificate for soon.test expires in 5 days ({}; min_days_left 14)\"",
                date(at(made, 5.5)),
                date(at(made, 5.5))
            ),
        )
        .assert_line_contains(&["result=OK", "target=soon-3 "], "days_left=5")
        .assert_line_contains(
            &["result=FAIL", "target=expired "],
            &format!(
                "days_left=-4 expires={} err=\"certificate for old.test expired 3 days ago ({})\"",
                date(at(made, -3.5)),
                date(at(made, -3.5))
            ),
        )
        .assert_line_contains(
            &["result=FAIL", "target=future "],
            &format!(
                "err=\"certificate for future.test is not valid before {} (is this machine's clock right?)\"",
                date(at(made, 2.5))
            ),
        )
        .assert_line_contains(
            &["result=FAIL", "target=self-signed "],
            &format!(
                "err=\"certificate for self.test does not verify: unknown issuer (self-signed, not signed by a CA in {ca})\""
            ),
        )
        .assert_line_contains(
            &["result=FAIL", "target=public-roots "],
            "err=\"certificate for svc.example.com does not verify: unknown issuer (not signed by a CA of the bundled Mozilla roots; self-signed or a private CA? set ca_file)\"",
        )
        .assert_line_contains(
            &["result=FAIL", "target=public-roots "],
            "days_left=60",
        )
        .assert_line_contains(
            &["result=FAIL", "target=refused "],
            "err=\"connection refused\"",
        )
        .assert_line_contains(
            &["result=FAIL", "target=silent "],
            &format!(
                "err=\"TLS handshake timed out after 1s (connected to 127.0.0.1:{silent}, no TLS answer: is it a TLS port?)\""
            ),
        )
        .assert_line_contains(
            &["result=FAIL", "target=plain "],
            &format!("err=\"TLS handshake failed: 127.0.0.1:{plain} sent something that is not TLS"),
        )
        .assert_line_contains(&["msg=\"pass done\""], "healthy=2 failing=10");
}

/// Healthy certificates exit 0; the default of min_days_left is 14 days: a certificate with 5
/// days left fails without it and passes with `min_days_left: 3`; the figures are fields of
/// the JSON log too.
#[test]
fn healthy_certificates_exit_0_and_min_days_left_defaults_to_14() {
    let t = Test::new();
    let made = certificates(&t);
    let (_fresh, fresh) = tls_server(&t, "fresh.pem", "leaf.key", None);
    let (_soon, soon) = tls_server(&t, "soon.pem", "leaf.key", None);
    let healthy = format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: web
    checks:
      - {{tls_cert: "localhost:{fresh}", server_name: svc.example.com, ca_file: "{{dir}}/ca.pem"}}
      - {{tls_cert: "127.0.0.1:{soon}", server_name: soon.test, ca_file: "{{dir}}/ca.pem", min_days_left: 3}}
    action: none
"#
    );
    let t = t.config(&healthy);
    let out = t.run(&["check", "--log-format", "json"]);
    out.assert_code(0);
    let lines = json_lines(&out);
    let checks: Vec<_> = lines
        .iter()
        .filter(|l| l.get("msg").and_then(|m| m.as_str()) == Some("check"))
        .collect();
    assert_eq!(checks.len(), 2, "{out}");
    assert_eq!(
        checks[0]["check"],
        format!("tls_cert localhost:{fresh} (name svc.example.com)")
    );
    assert_eq!(checks[0]["days_left"], 60, "{out}");
    assert_eq!(checks[0]["expires"], date(at(made, 60.5)), "{out}");
    assert_eq!(checks[1]["days_left"], 5, "{out}");
    assert_eq!(checks[1]["result"], "OK");

    // the default, 14 days, fails the 5-day certificate
    let t = t.config(&healthy.replace(", min_days_left: 3", ""));
    t.run(&["check"]).assert_code(2).assert_line_contains(
        &["result=FAIL", "target=web "],
        "certificate for soon.test expires in 5 days",
    );
    // test-config says what each check fails on
    t.run(&["test-config"])
        .assert_code(0)
        .assert_stdout_contains(&format!(
            "tls_cert localhost:{fresh} (name svc.example.com), timeout 5s"
        ))
        .assert_stdout_contains(&format!(
            "certificate must be for soon.test (also the SNI), verified against {} only, fails 14 days before expiry",
            t.path("ca.pem").display()
        ));
}

#[test]
fn tls_cert_config_errors_name_the_field_and_line() {
    let t = Test::new().config(
        r#"
targets:
  - name: web
    checks:
      - tls_cert: "svc.example.com"
      - {tls_cert: "svc.example.com:443", min_days_left: 4000}
      - {tcp_port: "127.0.0.1:443", server_name: svc.example.com}
      - {tls_cert: "svc.example.com:443", server_name: "not a name"}
    action: none
"#,
    );
    let out = t.run(&["check"]);
    out.assert_code(78)
        .assert_stderr_contains(
            "targets[0].checks[0].tls_cert: \"svc.example.com\" has no port: write host:port, e.g. svc.example.com:443 (line 5)",
        )
        .assert_stderr_contains(
            "targets[0].checks[1].min_days_left: 4000 is out of range 0..3650: give the days a certificate must still be valid, e.g. 14 (0: fail only when expired) (line 6)",
        )
        .assert_stderr_contains(
            "targets[0].checks[2].server_name: is a modifier of tls_cert checks only (line 7)",
        )
        .assert_stderr_contains(
            "targets[0].checks[3].server_name: \"not a name\" is not a DNS name or an IP address",
        );
}

/// The tls_cert check reads its ca_file as the http check does (tests/integration/http.rs): a
/// FIFO there makes the check unknown at once (never blocks it) and test-config warns about it.
#[test]
fn a_fifo_as_ca_file_is_unknown_at_once_instead_of_blocking_the_check() {
    let dead = free_port();
    fifo_ca_file_is_unknown(&format!("tls_cert: \"127.0.0.1:{dead}\""));
}

/// A ca_file that cannot be used (not PEM, no certificate in it, a FIFO, missing) is a
/// mistake in the config, not a sign the service is down: the result is unknown (nothing
/// counted, no action, exit 1), pass after pass, for tls_cert and http alike, whereas a
/// service that really fails is restarted.
#[test]
fn a_bad_ca_file_makes_the_check_unknown_and_never_restarts() {
    let t = Test::new();
    t.write("text.pem", "this is not PEM\n");
    // PEM, but only a key
    t.write(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n",
    );
    nix::unistd::mkfifo(
        &t.path("fifo.pem"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let port = free_port();
    let mut yaml = String::from("state_file: {dir}/state.json\ntargets:\n");
    let cases = [
        ("tls-text", "tls_cert: \"127.0.0.1:PORT\"", "text.pem"),
        ("tls-key", "tls_cert: \"127.0.0.1:PORT\"", "key.pem"),
        ("tls-fifo", "tls_cert: \"127.0.0.1:PORT\"", "fifo.pem"),
        ("tls-missing", "tls_cert: \"127.0.0.1:PORT\"", "missing.pem"),
        ("http-text", "http: \"https://127.0.0.1:PORT/\"", "text.pem"),
        ("http-key", "http: \"https://127.0.0.1:PORT/\"", "key.pem"),
    ];
    for (name, check, file) in cases {
        let check = check.replace("PORT", &port.to_string());
        yaml.push_str(&format!(
            "  - name: {name}\n    checks: [{{{check}, ca_file: \"{{dir}}/{file}\"}}]\n    policy: {{fail_threshold: 1, restart_cooldown_seconds: 0}}\n    action:\n      exec:\n        restart: [\"/bin/sh\", \"-c\", \"echo {name} >> {{dir}}/runs\"]\n"
        ));
    }
    let t = t.config(&yaml);
    let text = t.path("text.pem").display().to_string();
    let key = t.path("key.pem").display().to_string();
    for _ in 0..2 {
        let out = t.run(&["check"]);
        out.assert_code(1)
            .assert_line_contains(&["msg=\"pass done\""], "failing=0 unknown=6");
        for (name, _, _) in cases {
            out.assert_line_contains(
                &["result=FAIL", &format!("target={name} ")],
                "inconclusive=true",
            )
            .assert_line_contains(
                &["level=error", "cannot tell", &format!("target={name} ")],
                "ca_file",
            );
        }
        out.assert_line_contains(
            &["result=FAIL", "target=tls-text "],
            &format!(
                "err=\"ca_file {text} holds no PEM certificate (-----BEGIN CERTIFICATE-----)\""
            ),
        )
        .assert_line_contains(
            &["result=FAIL", "target=http-key "],
            &format!(
                "err=\"ca_file {key} holds no PEM certificate (-----BEGIN CERTIFICATE-----)\""
            ),
        )
        .assert_line_contains(
            &["result=FAIL", "target=tls-fifo "],
            "is a FIFO (named pipe), not a regular file",
        )
        .assert_line_contains(&["result=FAIL", "target=tls-missing "], "does not exist");
    }
    assert!(!t.exists("runs"), "acted on a config mistake");
    let st = t.state();
    assert_eq!(st["targets"]["tls-text"]["consecutive_failures"], 0, "{st}");
    assert_eq!(st["targets"]["http-key"]["consecutive_failures"], 0, "{st}");
}

/// `openssl s_server` on 127.0.0.1 serving `cert` (key `leaf.key`) followed by the
/// certificates in `chain` (`-cert_chain`), as a server configured with a full chain does.
fn chain_server(t: &Test, cert: &str, chain: &str) -> (ChildGuard, u16) {
    let port = free_port();
    let mut cmd = Command::new("openssl");
    cmd.arg("s_server")
        .arg("-accept")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(t.path(cert))
        .arg("-key")
        .arg(t.path("leaf.key"))
        .arg("-cert_chain")
        .arg(t.path(chain))
        .args(["-www", "-quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let guard = ChildGuard::spawn(cmd);
    wait_for_port(port, EVENT_LIMIT);
    (guard, port)
}

/// Beside [`certificates`]: one intermediate CA (`/CN=neon-tls-test-inter`, key `inter.key`)
/// signed by `ca.pem` three times with other dates (days from now, in `INTERS`), and
/// `chained.pem`, a leaf for svc.example.com valid 120.5 days issued by it (it verifies
/// under each of the three). `long-and-root.pem` is `inter-long.pem` then `ca.pem`.
fn chain_certificates(t: &Test, now: SystemTime) {
    const INTERS: &[(&str, f64, f64)] = &[
        ("inter-expired", -100.0, -2.5),
        ("inter-soon", -100.0, 3.5),
        ("inter-long", -100.0, 100.5),
    ];
    let d = t.dir();
    let mut csr = vec!["req", "-new", "-nodes", "-keyout", "inter.key"];
    csr.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]);
    csr.extend(["-out", "inter.csr", "-subj", "/CN=neon-tls-test-inter"]);
    openssl(d, &csr);
    t.write(
        "inter.ext",
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    );
    t.write("chained.ext", "subjectAltName=DNS:svc.example.com\n");
    let sign = |csr: &str, out: &str, ca: &str, key: &str, ext: &str, from: f64, until: f64| {
        let (start, end) = (asn1_time(at(now, from)), asn1_time(at(now, until)));
        openssl(
            d,
            &[
                "ca",
                "-batch",
                "-notext",
                "-config",
                "ca.cnf",
                "-cert",
                ca,
                "-keyfile",
                key,
                "-in",
                csr,
                "-out",
                out,
                "-startdate",
                &start,
                "-enddate",
                &end,
                "-extfile",
                ext,
            ],
        );
    };
    for (name, from, until) in INTERS {
        let out = format!("{name}.pem");
        sign(
            "inter.csr",
            &out,
            "ca.pem",
            "ca.key",
            "inter.ext",
            *from,
            *until,
        );
    }
    sign(
        "leaf.csr",
        "chained.pem",
        "inter-long.pem",
        "inter.key",
        "chained.ext",
        -1.0,
        120.5,
    );
    let both = std::fs::read_to_string(t.path("inter-long.pem")).expect("inter-long.pem")
        + &std::fs::read_to_string(t.path("ca.pem")).expect("ca.pem");
    t.write("long-and-root.pem", &both);
}

/// The chain is judged, not only the leaf: an expired intermediate says it is the one that
/// expired, with its own date (not the leaf's future one); an intermediate that expires
/// before the leaf sets days_left and fails min_days_left, naming it; a root the server
/// also sends is the trust store's business and is not judged (the test CA expires in 90
/// days, before the intermediate's 100).
#[test]
fn the_chain_is_judged_by_its_earliest_expiry() {
    let t = Test::new();
    let made = certificates(&t);
    chain_certificates(&t, made);
    let (_expired, expired) = chain_server(&t, "chained.pem", "inter-expired.pem");
    let (_soon, soon) = chain_server(&t, "chained.pem", "inter-soon.pem");
    let (_long, long) = chain_server(&t, "chained.pem", "long-and-root.pem");
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: inter-expired
    checks: [{{tls_cert: "127.0.0.1:{expired}", server_name: svc.example.com, ca_file: "{{dir}}/ca.pem"}}]
    action: none
  - name: inter-soon
    checks: [{{tls_cert: "127.0.0.1:{soon}", server_name: svc.example.com, ca_file: "{{dir}}/ca.pem"}}]
    action: none
  - name: inter-soon-2
    checks: [{{tls_cert: "127.0.0.1:{soon}", server_name: svc.example.com, ca_file: "{{dir}}/ca.pem", min_days_left: 2}}]
    action: none
  - name: with-root
    checks: [{{tls_cert: "127.0.0.1:{long}", server_name: svc.example.com, ca_file: "{{dir}}/ca.pem", min_days_left: 99}}]
    action: none
"#
    ));
    let (gone, soon_date) = (date(at(made, -2.5)), date(at(made, 3.5)));
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "target=inter-expired "],
            &format!(
                "days_left=-3 expires={gone} err=\"certificate for svc.example.com does not verify: the chain's intermediate CA neon-tls-test-inter expired 2 days ago ({gone})\""
            ),
        )
        .assert_line_contains(
            &["result=FAIL", "target=inter-soon "],
            &format!(
                "days_left=3 expires={soon_date} err=\"intermediate CA neon-tls-test-inter in the chain for svc.example.com expires in 3 days ({soon_date}; min_days_left 14)\""
            ),
        )
        .assert_line_contains(
            &["result=OK", "target=inter-soon-2 "],
            &format!("days_left=3 expires={soon_date}"),
        )
        .assert_line_contains(
            &["result=OK", "target=with-root "],
            &format!("days_left=100 expires={}", date(at(made, 100.5))),
        )
        .assert_line_contains(&["msg=\"pass done\""], "healthy=2 failing=2");
}

/// A server that answers, but too slowly to finish the handshake in time, is not told "no
/// TLS answer"; a certificate too large for rustls (1,500 long names: over 64 KiB) is TLS,
/// not "something that is not TLS".
#[test]
fn slow_and_oversized_handshakes_say_what_happened() {
    let t = Test::new();
    // a TLS record header promising a 16 KiB handshake record, then a byte every 0.5 s
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let drip = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = conn.write_all(&[0x16, 0x03, 0x03, 0x40, 0x00]);
                for _ in 0..20 {
                    std::thread::sleep(Duration::from_millis(500));
                    if conn.write_all(&[0x02]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let names: String = (0..1500)
        .map(|n| format!("DNS.{} = h{n}.{}.example.com\n", n + 1, "a".repeat(50)))
        .collect();
    t.write(
        "big.cnf",
        &format!(
            "[req]\ndistinguished_name = dn\nx509_extensions = ext\nprompt = no\n[dn]\nCN = big.test\n[ext]\nsubjectAltName = @alt\n[alt]\n{names}"
        ),
    );
    openssl(
        t.dir(),
        &[
            "req",
            "-x509",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-keyout",
            "big.key",
            "-out",
            "big.pem",
            "-days",
            "60",
            "-config",
            "big.cnf",
        ],
    );
    let (_big, big) = tls_server(&t, "big.pem", "big.key", None);
    let t = t.config(&format!(
        r#"
state_file: {{dir}}/state.json
targets:
  - name: drip
    checks: [{{tls_cert: "127.0.0.1:{drip}", server_name: svc.example.com, timeout_seconds: 1}}]
    action: none
  - name: big
    checks: [{{tls_cert: "127.0.0.1:{big}", server_name: big.test}}]
    action: none
"#
    ));
    t.run(&["check"])
        .assert_code(2)
        .assert_line_contains(
            &["result=FAIL", "target=drip "],
            &format!("err=\"TLS handshake incomplete after 1s (connected to 127.0.0.1:{drip}, "),
        )
        .assert_line_contains(
            &["result=FAIL", "target=drip "],
            " bytes received: the server answers too slowly or stalled)\"",
        )
        .assert_line_contains(
            &["result=FAIL", "target=big "],
            &format!("err=\"TLS handshake failed: 127.0.0.1:{big} sent a handshake message larger than this client takes (64 KiB, rustls's limit): its certificate chain is too large (thousands of names?)\""),
        );
}

/// A stand-in TLS 1.2 server, for what no real server can be made to do (openssl and every
/// TLS library refuse to serve a malformed certificate): it reads the ClientHello and answers
/// with a ServerHello (ECDHE-ECDSA-AES128-GCM-SHA256), a Certificate message holding `cert`
/// (any bytes), a ServerKeyExchange (an X25519 share, a signature of zeros) and a
/// ServerHelloDone, in plain handshake records: the client verifies the certificate when the
/// ServerHelloDone arrives, before the signature is looked at.
fn malformed_certificate_server(cert: Vec<u8>) -> u16 {
    use std::io::Read;
    fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
        let n = body.len();
        let mut m = vec![kind, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        m.extend_from_slice(body);
        m
    }
    let u24 = |n: usize| [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    let mut hello = vec![0x03, 0x03];
    hello.extend([0x42; 32]); // server random
    hello.extend([0x00, 0xc0, 0x2b, 0x00, 0x00, 0x00]); // no session id, suite, null compression, no extensions
    let mut certs = u24(cert.len() + 3).to_vec();
    certs.extend(u24(cert.len()));
    certs.extend(&cert);
    let mut kx = vec![0x03, 0x00, 0x1d, 0x20];
    kx.extend([0x09; 32]);
    kx.extend([0x04, 0x03, 0x00, 0x40]);
    kx.extend([0x00; 64]);
    let mut flight = handshake(2, &hello);
    flight.extend(handshake(11, &certs));
    flight.extend(handshake(12, &kx));
    flight.extend(handshake(14, &[]));
    let mut record = vec![
        0x16,
        0x03,
        0x03,
        (flight.len() >> 8) as u8,
        flight.len() as u8,
    ];
    record.extend(flight);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let record = record.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
                let mut header = [0u8; 5];
                if conn.read_exact(&mut header).is_err() {
                    return;
                }
                let mut hello = vec![0u8; usize::from(header[3]) << 8 | usize::from(header[4])];
                if conn.read_exact(&mut hello).is_err() {
                    return;
                }
                let _ = conn.write_all(&record);
                // until the client has said why and closed
                let _ = conn.read_to_end(&mut Vec::new());
            });
        }
    });
    port
}

/// A server that sends a malformed certificate (random bytes, a real certificate cut in the
/// middle, a length claiming 4 GiB) gets a FAIL that says so, from a parser that never
/// panics on what a server sends (the tls_cert check reads it as root): no figures, no
/// unknown, the next target still judged.
#[test]
fn a_malformed_certificate_fails_the_check_and_says_so() {
    let t = Test::new();
    certificates(&t);
    let (_fresh, fresh) = tls_server(&t, "fresh.pem", "leaf.key", None);
    openssl(
        t.dir(),
        &[
            "x509",
            "-in",
            "fresh.pem",
            "-outform",
            "DER",
            "-out",
            "fresh.der",
        ],
    );
    let real = std::fs::read(t.path("fresh.der")).expect("fresh.der");
    assert!(real.len() > 300 && real[0] == 0x30, "a DER certificate");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"this is not a certificate, it is text".to_vec()),
        ("cut", real[..real.len() / 2].to_vec()),
        ("huge", vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00]),
    ];
    let mut config = String::from("state_file: {dir}/state.json\ntargets:\n");
    for (name, bytes) in &cases {
        let port = malformed_certificate_server(bytes.clone());
        config.push_str(&format!(
            "  - name: {name}\n    checks: [{{tls_cert: \"127.0.0.1:{port}\", server_name: svc.example.com, ca_file: \"{{dir}}/ca.pem\"}}]\n    action: none\n"
        ));
    }
    config.push_str(&format!(
        "  - name: fine\n    checks: [{{tls_cert: \"127.0.0.1:{fresh}\", server_name: svc.example.com, ca_file: \"{{dir}}/ca.pem\"}}]\n    action: none\n"
    ));
    let t = t.config(&config);
    let out = t.run(&["check"]);
    out.assert_code(2).assert_stderr_not_contains("panicked");
    for (name, _) in &cases {
        out.assert_line_contains(
            &["result=FAIL", &format!("target={name} ")],
            "err=\"certificate for svc.example.com does not verify: it is malformed\"",
        );
        let line = out.line(&["result=FAIL", &format!("target={name} ")]);
        assert!(!line.contains("days_left="), "{line}");
    }
    out.assert_line_contains(&["target=fine ", "check="], "result=OK");
}
