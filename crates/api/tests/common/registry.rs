//! A registry with htpasswd auth for tests that need credentials to matter:
//! Berth's own registry, in-process, on a free loopback port.

use std::process::Command;

const FIXTURES: &str = "/var/tmp/berth-fixtures";

/// A `berth-registry` with htpasswd auth on a loopback port, in-process:
/// alice may push and pull team/*, nobody else anything.
pub struct AuthRegistry {
    pub addr: String,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl AuthRegistry {
    pub fn start() -> AuthRegistry {
        use berth_registry::config::{AccessRule, AuthConfig};
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let hp = dir.path().join("htpasswd");
        std::fs::write(
            &hp,
            format!("alice:{}\n", bcrypt::hash("wonder", 4).unwrap()),
        )
        .unwrap();
        let cfg = berth_registry::Config {
            addr: "127.0.0.1:0".into(),
            auth: Some(AuthConfig {
                htpasswd: Some(hp),
                token: None,
                access: vec![AccessRule {
                    account: "alice".into(),
                    repository: "team/*".into(),
                    actions: vec!["pull".into(), "push".into()],
                }],
            }),
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = rt
            .block_on(berth_registry::Server::bind(cfg, dir.path().join("data")))
            .unwrap();
        let addr = server.local_addr().to_string();
        rt.spawn(server.run());
        AuthRegistry {
            addr,
            _rt: rt,
            _dir: dir,
        }
    }

    /// The busybox fixture as `repo`, pushed with alice's credentials.
    pub fn push_busybox(&self, repo: &str) -> String {
        let image = format!("{}/{repo}", self.addr);
        let o = Command::new("skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                "alice:wonder",
                &format!("oci:{FIXTURES}/busybox"),
                &format!("docker://{image}"),
            ])
            .output()
            .expect("skopeo is installed by scripts/setup.sh");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        image
    }
}
