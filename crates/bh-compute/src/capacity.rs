//! Capacity: what the host has (CPU, memory, disk free under the data folder, GPUs) and the share jobs may use.

use std::path::Path;

use bh_models::{Gpu, Resources};

use crate::config::CapacityConfig;
use crate::error::ComputeError;

/// Detects the host's resources: logical CPUs, total memory, free disk space of the file system that holds
/// `data_dir`, and the given GPUs.
pub fn detect(data_dir: &Path, gpus: Vec<Gpu>) -> Resources {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let cpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    Resources {
        cpu,
        memory: system.total_memory(),
        disk: free_disk(data_dir),
        gpu: gpus.len() as u64,
        gpus,
    }
}

/// Free space of the disk whose mount point is the longest prefix of `path` (0 when none is found).
fn free_disk(path: &Path) -> u64 {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let disks = sysinfo::Disks::new_with_refreshed_list();
    disks
        .list()
        .iter()
        .filter(|d| path.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
        .unwrap_or(0)
}

/// One allocation setting applied to a detected amount: empty means `default_share`, `N%` a share, any
/// other text an absolute quantity parsed by `parse`.
fn allocate<T>(
    setting: &str,
    field: &str,
    detected: T,
    default_share: f64,
    scale: impl Fn(T, f64) -> T,
    parse: impl Fn(&str) -> bh_models::Result<T>,
) -> Result<T, ComputeError> {
    let text = setting.trim();
    if text.is_empty() {
        return Ok(scale(detected, default_share));
    }
    if text.ends_with('%') {
        let share = bh_models::parse_capacity_fraction(text)
            .map_err(|e| ComputeError::Config(format!("{field}: {}", e.message)))?;
        return Ok(scale(detected, share));
    }
    parse(text).map_err(|e| ComputeError::Config(format!("{field}: {}", e.message)))
}

/// The capacity jobs may use: `Compute.AllocatedCapacity` applied to what was detected.
pub fn allocated(detected: &Resources, config: &CapacityConfig) -> Result<Resources, ComputeError> {
    let scale_u64 = |v: u64, share: f64| (v as f64 * share).floor() as u64;
    let cpu = allocate(
        &config.cpu,
        "Compute.AllocatedCapacity.CPU",
        detected.cpu,
        0.8,
        |v, share| v * share,
        bh_models::parse_cpu,
    )?;
    let memory = allocate(
        &config.memory,
        "Compute.AllocatedCapacity.Memory",
        detected.memory,
        0.8,
        scale_u64,
        bh_models::parse_bytes,
    )?;
    let disk = allocate(
        &config.disk,
        "Compute.AllocatedCapacity.Disk",
        detected.disk,
        0.8,
        scale_u64,
        bh_models::parse_bytes,
    )?;
    let gpu = allocate(
        &config.gpu,
        "Compute.AllocatedCapacity.GPU",
        detected.gpu,
        1.0,
        scale_u64,
        bh_models::parse_gpu,
    )?;
    let gpus = detected
        .gpus
        .iter()
        .take(usize::try_from(gpu).unwrap_or(usize::MAX))
        .cloned()
        .collect();
    Ok(Resources {
        cpu,
        memory,
        disk,
        gpu,
        gpus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Resources {
        Resources {
            cpu: 10.0,
            memory: 1000,
            disk: 2000,
            gpu: 2,
            gpus: Vec::new(),
        }
    }

    #[test]
    fn shares_and_absolute_values() {
        let config = CapacityConfig {
            cpu: "50%".into(),
            memory: "100".into(),
            disk: String::new(),
            gpu: "1".into(),
        };
        let got = allocated(&host(), &config).unwrap();
        assert_eq!(got.cpu, 5.0);
        assert_eq!(got.memory, 100);
        assert_eq!(got.disk, 1600);
        assert_eq!(got.gpu, 1);
    }

    #[test]
    fn bad_setting_names_the_field() {
        let config = CapacityConfig {
            cpu: "lots".into(),
            ..CapacityConfig::default()
        };
        let err = allocated(&host(), &config).unwrap_err();
        assert!(err.to_string().contains("AllocatedCapacity.CPU"), "{err}");
    }

    #[test]
    fn detection_finds_something() {
        let dir = tempfile::tempdir().unwrap();
        let got = detect(dir.path(), Vec::new());
        assert!(got.cpu >= 1.0);
        assert!(got.memory > 0);
    }
}
