//! Local container images for tests and benchmarks: no registry can be reached, so images are built here from
//! Debian's static busybox with `docker import`.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The tag of the busybox test image.
pub const BUSYBOX_IMAGE: &str = "bh-test/busybox:latest";

/// Whether the Docker Engine answers.
pub fn docker_available() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Builds `BUSYBOX_IMAGE` (FROM scratch + busybox-static and its applet links) unless it exists.
pub fn ensure_busybox_image() -> Result<&'static str> {
    // Tests in one process may ask at the same time; one builds, the others then find the image.
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let exists = Command::new("docker")
        .args(["image", "inspect", BUSYBOX_IMAGE])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if exists {
        return Ok(BUSYBOX_IMAGE);
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("busybox-static is not installed (apt-get install busybox-static)")?;
    let root = tempfile_dir()?;
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(root.join("tmp"))?;
    std::fs::copy(busybox, bin.join("busybox"))?;
    let applets = Command::new(busybox).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        let applet = applet.trim();
        if !applet.is_empty() && applet != "busybox" {
            std::os::unix::fs::symlink("busybox", bin.join(applet))?;
        }
    }
    let script = format!(
        "tar -C {} -c . | docker import -c 'ENV PATH=/bin' - {BUSYBOX_IMAGE} >/dev/null",
        root.display()
    );
    let status = Command::new("sh").args(["-c", &script]).status()?;
    let _ = std::fs::remove_dir_all(&root);
    if !status.success() {
        bail!("docker import of the busybox image failed");
    }
    Ok(BUSYBOX_IMAGE)
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("bh-image-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
