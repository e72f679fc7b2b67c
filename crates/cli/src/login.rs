//! `login` / `logout`: docker-style credentials in `~/.docker/config.json`.

use std::io::{self, BufRead, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use berth_distribution::auth::{self, Credentials};
use berth_distribution::{ClientOptions, RegistryClient};

#[derive(clap::Args)]
pub struct LoginArgs {
    /// Registry (default docker.io).
    server: Option<String>,
    #[arg(short, long)]
    username: Option<String>,
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from STDIN.
    #[arg(long)]
    password_stdin: bool,
}

fn server_of(s: Option<String>) -> String {
    s.map(|s| {
        s.trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    })
    .unwrap_or_else(|| "docker.io".into())
}

fn prompt(what: &str) -> Result<String> {
    eprint!("{what}: ");
    io::stderr().flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(a: LoginArgs) -> Result<()> {
    let server = server_of(a.server);
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let username = match a.username {
        Some(u) => u,
        None => prompt("Username")?,
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        io::stdin().lock().read_line(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        if !io::stdin().is_terminal() {
            bail!("cannot prompt for a password without a terminal; use --password-stdin");
        }
        prompt("Password")?
    };
    if username.is_empty() || password.is_empty() {
        bail!("username and password are required");
    }
    let creds = Credentials { username, password };
    let client = RegistryClient::new(
        &server,
        ClientOptions {
            insecure: false,
            credentials: Some(creds.clone()),
        },
    )?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(client.ping())
        .with_context(|| format!("login to {server}"))?;
    match auth::save_credentials(&server, &creds).context("storing credentials")? {
        auth::StoredIn::File(path) => eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.",
            path.display()
        ),
        auth::StoredIn::Helper(_) => {}
    }
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(server: Option<String>) -> Result<()> {
    let server = server_of(server);
    let key = auth::config_key(&server);
    if auth::remove_credentials(&server).context("updating credentials")? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(())
}
