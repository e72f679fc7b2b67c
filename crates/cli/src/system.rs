//! `history`, `image prune`, `system check`, `system df`.

use std::io::{self, BufRead, Write};

use anyhow::{Result, bail};
use berth_image::check::Severity;
use berth_image::{ImageStore, Removed};

use crate::format::{human_age, human_size, table};

#[derive(clap::Args)]
pub struct HistoryArgs {
    image: String,
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    #[arg(long)]
    no_trunc: bool,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all images not in use (mounted or by a container), not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

#[derive(clap::Subcommand)]
pub enum SystemCmd {
    /// Verify the store: every blob re-hashed, layer dirs, image records,
    /// leftovers of interrupted commands. Exits 1 if the store has problems.
    Check {
        /// Remove what the check finds (broken images lose their record).
        #[arg(long)]
        repair: bool,
    },
    /// Show disk usage (shared layers counted once).
    Df {
        #[arg(short, long)]
        verbose: bool,
    },
}

pub fn history(store: &ImageStore, a: HistoryArgs) -> Result<()> {
    let rec = store.resolve(&a.image)?;
    let entries = berth_image::history::history(store, &rec)?;
    let id = |e: &berth_image::history::HistoryEntry| match &e.id {
        Some(d) if a.no_trunc => d.to_string(),
        Some(d) => d.short().to_string(),
        None => "<missing>".into(),
    };
    if a.quiet {
        for e in &entries {
            println!("{}", id(e));
        }
        return Ok(());
    }
    let mut rows = vec![
        ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
            .map(String::from)
            .to_vec(),
    ];
    for e in &entries {
        let created = if a.human {
            human_age(e.created.as_deref())
        } else {
            e.created.clone().unwrap_or_default()
        };
        let mut by = e.created_by.replace(['\t', '\n'], " ");
        if !a.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        let size = if a.human {
            human_size(e.size)
        } else {
            e.size.to_string()
        };
        rows.push(vec![id(e), created, by, size, e.comment.clone()]);
    }
    print!("{}", table(rows));
    Ok(())
}

fn confirm(warning: &str) -> Result<bool> {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    io::stderr().flush()?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

pub fn prune(store: &ImageStore, a: PruneArgs) -> Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning)? {
        return Ok(());
    }
    let report = store.prune(a.all)?;
    if !report.removed.is_empty() {
        println!("Deleted Images:");
        for r in &report.removed {
            match r {
                Removed::Untagged(t) => println!("untagged: {t}"),
                Removed::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.gc.bytes));
    Ok(())
}

pub fn run(store: &ImageStore, cmd: SystemCmd) -> Result<()> {
    match cmd {
        SystemCmd::Check { repair } => check(store, repair),
        SystemCmd::Df { verbose } => df(store, verbose),
    }
}

fn check(store: &ImageStore, repair: bool) -> Result<()> {
    let report = store.check()?;
    for f in &report.findings {
        let kind = match f.severity {
            Severity::Problem => "problem",
            Severity::Garbage => "garbage",
        };
        println!("{kind}: {}", f.what);
    }
    println!(
        "checked {} images, {} blobs, {} layers: {} problems, {} garbage{}",
        report.images_checked,
        report.blobs_checked,
        report.layers_checked,
        report.problems(),
        report.findings.len() - report.problems(),
        if report.busy > 0 {
            format!(" ({} in progress, left alone)", report.busy)
        } else {
            String::new()
        }
    );
    if repair && !report.findings.is_empty() {
        let n = store.repair(&report)?;
        let after = store.check()?;
        println!(
            "repaired {n} entries; now {} problems, {} garbage",
            after.problems(),
            after.findings.len() - after.problems()
        );
        if after.problems() > 0 {
            bail!("the store still has problems");
        }
        return Ok(());
    }
    if report.problems() > 0 {
        bail!("the store has problems; `berth system check --repair` removes them");
    }
    Ok(())
}

fn df(store: &ImageStore, verbose: bool) -> Result<()> {
    let u = store.disk_usage()?;
    let active = u.images.iter().filter(|i| i.in_use).count();
    let pct = |part: u64, whole: u64| (part * 100).checked_div(whole).unwrap_or(0);
    print!(
        "{}",
        table(vec![
            ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
                .map(String::from)
                .to_vec(),
            vec![
                "Images".into(),
                u.images.len().to_string(),
                active.to_string(),
                human_size(u.layers_size),
                format!(
                    "{} ({}%)",
                    human_size(u.reclaimable),
                    pct(u.reclaimable, u.layers_size)
                ),
            ],
        ])
    );
    println!(
        "\nOn disk: layers {}, content store {} (compressed blobs), total {}",
        human_size(u.layers_disk),
        human_size(u.content_disk),
        human_size(u.layers_disk + u.content_disk)
    );
    if verbose {
        println!("\nImages space usage:\n");
        let mut rows = vec![
            [
                "REPOSITORY",
                "TAG",
                "IMAGE ID",
                "SIZE",
                "SHARED SIZE",
                "UNIQUE SIZE",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for i in &u.images {
            let (repo, tag) = i
                .repo_tags
                .first()
                .and_then(|t| t.parse::<berth_image::Reference>().ok())
                .map_or(("<none>".into(), "<none>".into()), |r| {
                    (r.familiar_repository(), r.tag.unwrap_or_default())
                });
            rows.push(vec![
                repo,
                tag,
                i.id.short().to_string(),
                human_size(i.size),
                human_size(i.shared),
                human_size(i.unique),
            ]);
        }
        print!("{}", table(rows));
    }
    Ok(())
}
