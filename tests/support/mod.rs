//! What the integration tests share: the example binaries that `cargo test` builds beside
//! them. Included with `mod support;`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

/// The example `name`'s binary: `target/<profile>/deps/<this test>` →
/// `target/<profile>/examples/<name>`, refused when missing or older than its sources.
pub fn example_binary(name: &str) -> Result<PathBuf> {
    let test = std::env::current_exe()?;
    let profile = test
        .parent()
        .and_then(Path::parent)
        .context("the test binary is not in target/<profile>/deps")?;
    let binary = profile
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let built = binary.metadata().and_then(|m| m.modified());
    let built = built.with_context(|| {
        format!(
            "{} is missing: run the whole `cargo test` (it builds the examples) or \
             `cargo build --release --example {name}` first",
            binary.display()
        )
    })?;
    // `cargo test --test NAME` alone does not rebuild examples: refuse to test an old
    // one, by the sources cargo lists for it.
    for source in sources(&binary.with_extension("d"))? {
        let changed = source.metadata().and_then(|m| m.modified());
        ensure!(
            changed.is_ok_and(|changed| changed <= built),
            "{} is older than {}: run `cargo build --release --example {name}` first",
            binary.display(),
            source.display()
        );
    }
    Ok(binary)
}

/// The sources in cargo's dep-info file, `binary: source source ..` (a space in a path is
/// written `\ `).
fn sources(dep_info: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(dep_info)
        .with_context(|| format!("cannot read {}", dep_info.display()))?;
    let (_, list) = text
        .lines()
        .next()
        .and_then(|line| line.split_once(": "))
        .with_context(|| format!("{} is not a dep-info file", dep_info.display()))?;
    let mut sources = Vec::new();
    let mut path = String::new();
    let mut chars = list.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                chars.next();
                path.push(' ');
            }
            ' ' if !path.is_empty() => sources.push(PathBuf::from(std::mem::take(&mut path))),
            ' ' => {}
            c => path.push(c),
        }
    }
    if !path.is_empty() {
        sources.push(PathBuf::from(path));
    }
    ensure!(
        !sources.is_empty(),
        "{} lists no sources",
        dep_info.display()
    );
    Ok(sources)
}
