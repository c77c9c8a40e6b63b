//! `user:` and `group:` of exec actions, `on_give_up` and `command` checks: who the command
//! runs as, looked up in the user and group databases now, so that an unknown one is a config
//! error with its line (see `spawn::RunAs` for what they mean).

use super::Ctx;
use crate::config::raw::{GroupSpec, UserSpec};
use crate::spawn::{lookup_group, lookup_user, RunAs};

/// Who a command at `p` runs as. `Ok(None)`: neither key given (as the watchdog). `Err`: an
/// error was recorded.
pub(super) fn run_as(
    cx: &mut Ctx,
    p: &str,
    user: Option<&UserSpec>,
    group: Option<&GroupSpec>,
) -> Result<Option<RunAs>, ()> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let before = cx.issues.len();
    let account = user.and_then(|u| {
        let up = format!("{p}.user");
        let v = cx.expand(&up, &u.0)?;
        lookup_user(&v)
            .map_err(|e| {
                let e = cx.masked(&e);
                cx.err(&up, e)
            })
            .ok()
    });
    let grp = group.and_then(|g| {
        let gp = format!("{p}.group");
        let v = cx.expand(&gp, &g.0)?;
        lookup_group(&v)
            .map_err(|e| {
                let e = cx.masked(&e);
                cx.err(&gp, e)
            })
            .ok()
    });
    if cx.issues.len() > before {
        return Err(());
    }
    let key = if user.is_some() {
        format!("{p}.user")
    } else {
        format!("{p}.group")
    };
    match RunAs::new(account, grp) {
        Ok(r) => {
            if !cx.env.is_root {
                if let Err(e) = r.needs_switch() {
                    cx.warn(&key, format!("will fail to run: {e}"));
                }
            }
            Ok(Some(r))
        }
        Err(e) => {
            let e = cx.masked(&e);
            cx.err(&key, e);
            Err(())
        }
    }
}
