//! Restart policies (`no`, `on-failure[:N]`, `always`, `unless-stopped`)
//! with Docker's back-off: 100 ms doubling up to a minute, back to 100 ms
//! once a run lasted 10 s. A `stop` cancels restarts until the next start;
//! `always` comes back after a daemon restart even then, `unless-stopped`
//! does not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::model::{Container, HostConfig};
use crate::Engine;
use crate::error::{EngineError, Result};
use crate::util::{now_rfc3339, parse_rfc3339};

const FIRST_DELAY_MS: u64 = 100;
const MAX_DELAY_MS: u64 = 60_000;
const RESET_AFTER_SECS: f64 = 10.0;

/// Checks the policy at create and update, as Docker's daemon does.
pub(crate) fn validate(hc: &HostConfig) -> Result<()> {
    let Some(p) = &hc.restart_policy else {
        return Ok(());
    };
    let bad = |m: String| Err(EngineError::InvalidArgument(m));
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if p.maximum_retry_count != 0 {
                return bad(format!(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure', not '{}'",
                    p.name
                ));
            }
        }
        "on-failure" => {
            if p.maximum_retry_count < 0 {
                return bad(
                    "invalid restart policy: maximum retry count cannot be negative".into(),
                );
            }
        }
        other => {
            return bad(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ));
        }
    }
    if hc.auto_remove.unwrap_or(false) && !matches!(p.name.as_str(), "" | "no") {
        return bad("can't create 'AutoRemove' container with restart policy".into());
    }
    Ok(())
}

/// Docker's RestartManager.ShouldRestart, minus the cancel flag (the
/// caller checks `stopping`): whether the last exit calls for a restart.
pub(crate) fn should_restart(c: &Container) -> bool {
    let Some(p) = &c.host_config.restart_policy else {
        return false;
    };
    match p.name.as_str() {
        "always" => true,
        "unless-stopped" => !c.has_been_manually_stopped,
        "on-failure" => {
            c.state.exit_code != 0
                && (p.maximum_retry_count == 0 || c.restart_count < p.maximum_retry_count)
        }
        _ => false,
    }
}

/// The next back-off after a run that lasted `ran` seconds.
fn next_delay(prev_ms: u64, ran: f64) -> u64 {
    let prev = if ran >= RESET_AFTER_SECS { 0 } else { prev_ms };
    if prev == 0 {
        FIRST_DELAY_MS
    } else {
        (prev * 2).min(MAX_DELAY_MS)
    }
}

/// Called with the exit just applied: when the policy says so, puts the
/// container in `restarting` (Docker keeps `Running` true meanwhile) and
/// returns the delay before the start.
pub(crate) fn after_exit(c: &mut Container) -> Option<Duration> {
    if c.stopping || c.state.status == "removing" || !should_restart(c) {
        return None;
    }
    let ran = match (
        parse_rfc3339(&c.state.started_at),
        parse_rfc3339(&c.state.finished_at),
    ) {
        (Some(s), Some(f)) => f - s,
        _ => 0.0,
    };
    c.restart_backoff_ms = next_delay(c.restart_backoff_ms, ran);
    mark_restarting(c);
    Some(Duration::from_millis(c.restart_backoff_ms))
}

fn mark_restarting(c: &mut Container) {
    c.restart_count += 1;
    c.state.restarting = true;
    c.state.running = true;
    c.state.status = "restarting".into();
    c.state.pid = 0;
}

impl Engine {
    /// After the back-off, starts the container again unless a stop,
    /// kill (for unless-stopped) or removal came first.
    pub(crate) fn restart_after(self: &Arc<Self>, id: String, delay: Duration) {
        let engine = self.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + delay;
            let mut t = engine.lock();
            loop {
                let Some(c) = t.containers.get(&id) else {
                    return;
                };
                if c.state.status != "restarting" || c.stopping {
                    return;
                }
                let now = Instant::now();
                if now >= end {
                    break;
                }
                t = engine
                    .changed
                    .wait_timeout(t, end - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            drop(t);
            if let Err(e) = engine.start_container(&id, true) {
                let mut t = engine.lock();
                if let Some(c) = t.containers.get_mut(&id) {
                    c.state.restarting = false;
                    c.state.running = false;
                    c.state.status = "exited".into();
                    c.state.error = e.to_string();
                    c.state.finished_at = now_rfc3339();
                    let _ = engine.persist(c);
                }
                drop(t);
                engine.changed.notify_all();
            }
        });
    }

    /// `stop`/`kill`/`rm -f` mark the container: for unless-stopped it
    /// stays down, and `stop` cancels restarts outright. A container
    /// waiting out its back-off simply becomes exited. Returns whether it
    /// was restarting.
    pub(crate) fn mark_stopped(&self, id: &str, cancel: bool) -> bool {
        let mut t = self.lock();
        let Some(c) = t.containers.get_mut(id) else {
            return false;
        };
        c.has_been_manually_stopped = true;
        if cancel {
            // A restart in flight gives up at its last check, or, past
            // it, runs and the caller stops it as any running container.
            c.stopping = true;
            t = self.wait_not_starting(t, id);
        }
        let Some(c) = t.containers.get_mut(id) else {
            return false;
        };
        let was = c.state.restarting;
        if was && cancel {
            c.state.restarting = false;
            c.state.running = false;
            c.state.status = "exited".into();
        }
        let _ = self.persist(c);
        drop(t);
        if was {
            self.changed.notify_all();
        }
        was
    }

    /// At daemon start: containers whose policy wants them up and that
    /// are not (exited meanwhile, or were in back-off) start again. As in
    /// Docker, a fresh daemon restarts `always` even after a `stop`.
    pub(crate) fn restart_on_boot(self: &Arc<Self>) {
        let ids: Vec<String> = {
            let mut t = self.lock();
            t.containers
                .values_mut()
                .filter(|c| !c.shim && c.state.status != "removing")
                .filter(|c| c.state.started_at != super::model::ZERO_TIME)
                .filter_map(|c| {
                    c.state.restarting = false;
                    c.state.running = false;
                    if c.state.status == "restarting" {
                        c.state.status = "exited".into();
                    }
                    if !should_restart(c) {
                        return None;
                    }
                    mark_restarting(c);
                    let _ = self.persist(c);
                    Some(c.id.clone())
                })
                .collect()
        };
        for id in ids {
            self.restart_after(id, Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::RestartPolicy;
    use super::*;

    fn with(name: &str, max: i64) -> Container {
        let mut c = Container::default();
        c.host_config.restart_policy = Some(RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        });
        c
    }

    #[test]
    fn policies() {
        let mut c = with("on-failure", 2);
        c.state.exit_code = 0;
        assert!(!should_restart(&c));
        c.state.exit_code = 1;
        assert!(should_restart(&c));
        c.restart_count = 2;
        assert!(!should_restart(&c));
        let mut c = with("unless-stopped", 0);
        assert!(should_restart(&c));
        c.has_been_manually_stopped = true;
        assert!(!should_restart(&c));
        let mut c = with("always", 0);
        c.has_been_manually_stopped = true;
        assert!(should_restart(&c));
        c.stopping = true;
        assert_eq!(after_exit(&mut c), None);
        assert!(!should_restart(&with("no", 0)));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        assert_eq!(next_delay(0, 0.1), 100);
        assert_eq!(next_delay(100, 0.1), 200);
        assert_eq!(next_delay(40_000, 0.1), 60_000);
        assert_eq!(next_delay(60_000, 0.1), 60_000);
        assert_eq!(next_delay(6400, 10.5), 100);
        let mut c = with("always", 0);
        assert_eq!(after_exit(&mut c), Some(Duration::from_millis(100)));
        assert!(c.state.restarting && c.state.running && c.restart_count == 1);
        assert_eq!(after_exit(&mut c), Some(Duration::from_millis(200)));
    }

    #[test]
    fn validation() {
        let mut hc = HostConfig {
            restart_policy: Some(RestartPolicy {
                name: "always".into(),
                maximum_retry_count: 3,
            }),
            ..HostConfig::default()
        };
        assert!(validate(&hc).is_err());
        hc.restart_policy = Some(RestartPolicy {
            name: "sometimes".into(),
            maximum_retry_count: 0,
        });
        assert!(validate(&hc).is_err());
        hc.restart_policy = Some(RestartPolicy {
            name: "on-failure".into(),
            maximum_retry_count: 3,
        });
        assert!(validate(&hc).is_ok());
        hc.auto_remove = Some(true);
        assert!(validate(&hc).is_err());
    }
}
