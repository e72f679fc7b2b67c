//! OCI hooks: run at the spec's points with the container state on stdin,
//! each with its own timeout.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks, Spec};

use crate::error::{Result, RuntimeError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    pub fn of(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            #[allow(deprecated)]
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

pub fn has_hooks(spec: &Spec, kinds: &[HookKind]) -> bool {
    spec.hooks()
        .as_ref()
        .is_some_and(|h| kinds.iter().any(|k| !k.of(h).is_empty()))
}

/// Runs every hook of `kind` in order; the first failure stops the rest.
pub fn run(spec: &Spec, kind: HookKind, state_json: &str) -> Result<()> {
    let Some(hooks) = spec.hooks().as_ref() else {
        return Ok(());
    };
    for (index, hook) in kind.of(hooks).iter().enumerate() {
        run_one(hook, state_json).map_err(|msg| RuntimeError::Hook {
            kind: kind.name(),
            index,
            path: hook.path().display().to_string(),
            msg,
        })?;
    }
    Ok(())
}

/// Runs every hook of `kind`, reporting failures as warnings on stderr: for
/// poststart and poststop the spec wants the remaining hooks and the
/// lifecycle to go on as if the hook had succeeded.
pub fn run_warn(spec: &Spec, kind: HookKind, state_json: &str) {
    let Some(hooks) = spec.hooks().as_ref() else {
        return;
    };
    for (index, hook) in kind.of(hooks).iter().enumerate() {
        if let Err(msg) = run_one(hook, state_json) {
            eprintln!(
                "berth-runtime: warning: hook {}[{index}] {}: {msg}",
                kind.name(),
                hook.path().display()
            );
        }
    }
}

fn run_one(hook: &Hook, state_json: &str) -> std::result::Result<(), String> {
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some(arg0) = args.first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(arg0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .envs(
            hook.env()
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter_map(|kv| kv.split_once('=')),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut pause = Duration::from_micros(500);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", hook.timeout().unwrap_or(0)));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    Err(format!("{status}: {}", stderr.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(hooks: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.2.0", "root": {"path": "rootfs"}, "hooks": hooks
        }))
        .unwrap()
    }

    #[test]
    fn state_arrives_on_stdin_and_env_is_the_hooks() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let spec = spec_with(serde_json::json!({"poststart": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {0}; echo \"$HOOKVAR\" >> {0}", out.display())],
            "env": ["HOOKVAR=v1"]
        }]}));
        run(&spec, HookKind::Poststart, "{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(out).unwrap(), "{\"id\":\"x\"}v1\n");
    }

    #[test]
    fn failure_and_timeout_are_errors_naming_the_hook() {
        let spec = spec_with(serde_json::json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo bad >&2; exit 3"]}
        ], "poststop": [
            {"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}
        ]}));
        let e = run(&spec, HookKind::CreateRuntime, "{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("createRuntime[0]") && e.contains("bad"), "{e}");
        let t = Instant::now();
        let e = run(&spec, HookKind::Poststop, "{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
    }
}
