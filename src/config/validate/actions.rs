//! Validation of a target's `action:` (exec, systemd, docker or `none`) and its `on_give_up:`.

use super::Ctx;
use crate::config::model::*;
use crate::config::raw::*;
use std::collections::BTreeMap;

/// `on_give_up: {exec: [argv...], timeout_seconds: N}`.
pub(super) fn on_give_up(
    cx: &mut Ctx,
    p: &str,
    raw: RawOnGiveUp,
    policy: &Policy,
) -> Option<OnGiveUp> {
    let Some(argv) = raw.exec else {
        cx.err(
            format!("{p}.exec"),
            "is missing: give the command to run once when the target gives up, e.g. [\"/usr/local/bin/page-oncall\"]",
        );
        return None;
    };
    let argv = cx.argv(&format!("{p}.exec"), &argv, None);
    let timeout = cx.seconds(&format!("{p}.timeout_seconds"), raw.timeout_seconds, 30, 1);
    let run_as = super::runas::run_as(cx, p, raw.user.as_ref(), raw.group.as_ref());
    if policy.give_up_after_restarts == 0 {
        cx.warn(
            p,
            "never runs: give_up_after_restarts is 0 (never give up) in this target's policy",
        );
    }
    Some(OnGiveUp {
        argv: argv?,
        timeout,
        run_as: run_as.ok()?,
    })
}

pub(super) fn action(cx: &mut Ctx, p: &str, a: RawAction) -> Option<Action> {
    let map = match a {
        RawAction::None => return Some(Action::None),
        RawAction::Map(m) => *m,
    };
    let given: Vec<&str> = [
        ("exec", map.exec.is_some()),
        ("systemd", map.systemd.is_some()),
        ("docker", map.docker.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| *k)
    .collect();
    if given.len() > 1 {
        cx.err(p, format!("has {}: choose one", given.join(" and ")));
        return None;
    }
    match (map.exec, map.systemd, map.docker) {
        (Some(e), _, _) => exec(cx, &format!("{p}.exec"), e).map(Action::Exec),
        (_, Some(s), _) => systemd(cx, &format!("{p}.systemd"), s).map(Action::Systemd),
        (_, _, Some(d)) => docker_action(cx, &format!("{p}.docker"), d).map(Action::Docker),
        (None, None, None) => {
            cx.err(
                p,
                "is empty: give `exec:`, `systemd:` or `docker:`, or write `action: none` to only monitor",
            );
            None
        }
    }
}

fn docker_action(cx: &mut Ctx, p: &str, d: RawDockerAction) -> Option<DockerAction> {
    let before = cx.issues.len();
    let container = match d.container.as_deref() {
        None => {
            cx.err(
                format!("{p}.container"),
                "is missing: name the container, e.g. my-container",
            );
            None
        }
        Some(c) => {
            let c = cx.expand(&format!("{p}.container"), c)?;
            if c.is_empty() || c.contains(['/', ' ', '?', '#']) {
                let shown = cx.show(&c);
                cx.err(
                    format!("{p}.container"),
                    format!("{shown} is not a container name or id"),
                );
                None
            } else {
                Some(c)
            }
        }
    };
    let method = match d.method.as_deref() {
        None | Some("restart") => DockerMethod::Restart,
        Some("start") => DockerMethod::Start,
        Some(m) => {
            cx.err(
                format!("{p}.method"),
                format!("{m:?} is not a method: use restart or start"),
            );
            DockerMethod::Restart
        }
    };
    let socket = match d.docker_socket.as_deref() {
        Some(s) => cx.abs_path(&format!("{p}.docker_socket"), s),
        None => Some(cx.docker_socket.clone()),
    };
    let stop_timeout = cx
        .seconds(
            &format!("{p}.stop_timeout_seconds"),
            d.stop_timeout_seconds,
            10,
            0,
        )
        .as_secs();
    let timeout = cx.seconds(&format!("{p}.timeout_seconds"), d.timeout_seconds, 60, 1);
    if timeout.as_secs() <= stop_timeout && cx.issues.len() == before {
        cx.err(
            format!("{p}.timeout_seconds"),
            format!(
                "{}s is not more than stop_timeout_seconds ({stop_timeout}s): the restart could never finish in time",
                timeout.as_secs()
            ),
        );
    }
    if cx.issues.len() > before {
        return None;
    }
    Some(DockerAction {
        container: container?,
        method,
        socket: socket?,
        timeout,
        stop_timeout,
    })
}

fn exec(cx: &mut Ctx, p: &str, e: RawExec) -> Option<ExecAction> {
    let before = cx.issues.len();
    if e.start.is_none() && e.restart.is_none() {
        cx.err(
            p,
            "needs `start:` or `restart:` (or both): the command that brings the target back",
        );
        return None;
    }
    let cwd = e
        .cwd
        .as_deref()
        .and_then(|c| cx.abs_path(&format!("{p}.cwd"), c));
    // `./start.sh` runs from the action's cwd when it has one
    let stop = e
        .stop
        .as_deref()
        .and_then(|a| cx.argv(&format!("{p}.stop"), a, cwd.as_deref()));
    if stop.is_some() && e.start.is_none() {
        cx.err(
            format!("{p}.stop"),
            "runs before `start:`, and there is no `start:`: give the command that starts the target",
        );
    }
    let start = e
        .start
        .as_deref()
        .and_then(|a| cx.argv(&format!("{p}.start"), a, cwd.as_deref()));
    let restart = e
        .restart
        .as_deref()
        .and_then(|a| cx.argv(&format!("{p}.restart"), a, cwd.as_deref()));
    let timeout = cx.seconds(&format!("{p}.timeout_seconds"), e.timeout_seconds, 30, 1);
    let detach = e.detach.unwrap_or(false);
    let log_file = match e.log_file.as_deref() {
        Some(f) => {
            if !detach {
                cx.err(
                    format!("{p}.log_file"),
                    "only applies with `detach: true` (otherwise output is captured and logged)",
                );
            }
            cx.abs_path(&format!("{p}.log_file"), f)
        }
        None => None,
    };
    let run_as = super::runas::run_as(cx, p, e.user.as_ref(), e.group.as_ref());
    if let (Some(f), true) = (&log_file, detach) {
        let who = run_as.as_ref().ok().and_then(Option::as_ref);
        super::runas::log_file_dirs(cx, &format!("{p}.log_file"), f, who);
    }
    let mut env = BTreeMap::new();
    for (k, v) in e.env.unwrap_or_default() {
        let kp = format!("{p}.env.{k}");
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            cx.err(
                &kp,
                format!("{k:?} is not a valid environment variable name"),
            );
            continue;
        }
        if let Some(v) = cx.expand(&kp, &v) {
            env.insert(k, v);
        }
    }
    if cx.issues.len() > before {
        return None;
    }
    Some(ExecAction {
        stop,
        start,
        restart,
        timeout,
        detach,
        log_file,
        env,
        cwd,
        run_as: run_as.ok()?.map(Box::new),
    })
}

fn systemd(cx: &mut Ctx, p: &str, s: RawSystemd) -> Option<SystemdAction> {
    let before = cx.issues.len();
    let unit = match s.unit.as_deref() {
        None => {
            cx.err(
                format!("{p}.unit"),
                "is missing: name the unit, e.g. nginx.service",
            );
            None
        }
        Some(u) => super::checks::unit_name(cx, &format!("{p}.unit"), u),
    };
    let method = match s.method.as_deref() {
        None | Some("restart") => SystemdMethod::Restart,
        Some("start") => SystemdMethod::Start,
        Some("reload-or-restart") => SystemdMethod::ReloadOrRestart,
        Some(m) => {
            cx.err(
                format!("{p}.method"),
                format!("{m:?} is not a method: use restart, start or reload-or-restart"),
            );
            SystemdMethod::Restart
        }
    };
    let timeout = cx.seconds(&format!("{p}.timeout_seconds"), s.timeout_seconds, 90, 1);
    if cx.issues.len() > before {
        return None;
    }
    Some(SystemdAction {
        unit: unit?,
        method,
        timeout,
    })
}
