//! GPU detection for the compute node: NVIDIA through NVML, AMD through `rocm-smi`, Intel through `xpu-smi`.
//!
//! Every probe reports "no GPU of mine here" as `Ok(vec![])` (library or tool absent), and keeps `Err` for a
//! vendor stack that is installed but misbehaves. [`detect_gpus`] runs all probes, logs failures and numbers
//! the GPUs found `0..n` across vendors.

use std::collections::BTreeMap;
use std::process::Command;

use bh_models::Gpu;
use serde_json::Value;

/// Vendor names used in [`Gpu::vendor`].
pub const VENDOR_NVIDIA: &str = "NVIDIA";
pub const VENDOR_AMD: &str = "AMD";
pub const VENDOR_INTEL: &str = "Intel";

/// One way of finding GPUs on this machine.
pub trait GpuProbe: Send + Sync {
    /// The GPUs this probe sees; `Ok(empty)` when its vendor stack is not installed.
    fn detect(&self) -> Result<Vec<Gpu>, String>;
}

/// NVIDIA GPUs through the NVML library (`libnvidia-ml.so`), loaded at run time.
#[derive(Debug, Default, Clone, Copy)]
pub struct NvmlProbe;

impl GpuProbe for NvmlProbe {
    fn detect(&self) -> Result<Vec<Gpu>, String> {
        use nvml_wrapper::error::NvmlError;
        let nvml = match nvml_wrapper::Nvml::init() {
            Ok(nvml) => nvml,
            // No library or no driver: this machine simply has no usable NVIDIA GPU.
            Err(
                NvmlError::LibloadingError(_)
                | NvmlError::LibraryNotFound
                | NvmlError::DriverNotLoaded
                | NvmlError::FailedToLoadSymbol(_)
                | NvmlError::NoPermission,
            ) => return Ok(Vec::new()),
            Err(e) => return Err(format!("NVML init: {e}")),
        };
        let count = nvml
            .device_count()
            .map_err(|e| format!("NVML device count: {e}"))?;
        let mut gpus = Vec::with_capacity(count as usize);
        for index in 0..count {
            let device = nvml
                .device_by_index(index)
                .map_err(|e| format!("NVML device {index}: {e}"))?;
            let name = device
                .name()
                .map_err(|e| format!("NVML device {index} name: {e}"))?;
            let memory_bytes = device.memory_info().map(|m| m.total).unwrap_or(0);
            let pci_address = device
                .pci_info()
                .map(|p| normalise_pci_address(&p.bus_id))
                .unwrap_or_default();
            gpus.push(Gpu {
                index: u64::from(index),
                name,
                vendor: VENDOR_NVIDIA.to_string(),
                memory: memory_bytes / (1024 * 1024),
                pci_address,
            });
        }
        Ok(gpus)
    }
}

/// AMD GPUs through `rocm-smi --showproductname --showbus --showmeminfo vram --json`, when it is on PATH.
#[derive(Debug, Default, Clone, Copy)]
pub struct RocmSmiProbe;

impl GpuProbe for RocmSmiProbe {
    fn detect(&self) -> Result<Vec<Gpu>, String> {
        match run_tool(
            "rocm-smi",
            &[
                "--showproductname",
                "--showbus",
                "--showmeminfo",
                "vram",
                "--json",
            ],
        )? {
            None => Ok(Vec::new()),
            Some(out) => parse_rocm_smi(&out),
        }
    }
}

/// Intel GPUs through `xpu-smi discovery --json`, when it is on PATH.
#[derive(Debug, Default, Clone, Copy)]
pub struct XpuSmiProbe;

impl GpuProbe for XpuSmiProbe {
    fn detect(&self) -> Result<Vec<Gpu>, String> {
        match run_tool("xpu-smi", &["discovery", "--json"])? {
            None => Ok(Vec::new()),
            Some(out) => parse_xpu_smi(&out),
        }
    }
}

/// Runs a vendor tool; `Ok(None)` when it is not installed.
fn run_tool(program: &str, args: &[&str]) -> Result<Option<String>, String> {
    let output = match Command::new(program).args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("running {program}: {e}")),
    };
    if !output.status.success() {
        return Err(format!(
            "{program} exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()))
}

/// Parses `rocm-smi --showproductname --showbus --showmeminfo vram --json` (an object keyed `card0`, `card1`...).
pub fn parse_rocm_smi(json: &str) -> Result<Vec<Gpu>, String> {
    let root: Value =
        serde_json::from_str(json).map_err(|e| format!("rocm-smi output is not JSON: {e}"))?;
    let cards = root
        .as_object()
        .ok_or_else(|| "rocm-smi output is not a JSON object".to_string())?;
    let mut found: Vec<(u64, Gpu)> = Vec::new();
    for (key, card) in cards {
        let Some(number) = key.strip_prefix("card").and_then(|n| n.parse::<u64>().ok()) else {
            // rocm-smi adds entries such as "system"; only cards are GPUs.
            continue;
        };
        let field = |name: &str| {
            card.get(name)
                .map(value_to_string)
                .filter(|s| !s.is_empty())
        };
        let name = field("Card series")
            .or_else(|| field("Device Name"))
            .or_else(|| field("Card model"))
            .unwrap_or_else(|| "AMD GPU".to_string());
        let memory_bytes = field("VRAM Total Memory (B)")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let pci_address = field("PCI Bus")
            .map(|s| normalise_pci_address(&s))
            .unwrap_or_default();
        found.push((
            number,
            Gpu {
                index: number,
                name,
                vendor: VENDOR_AMD.to_string(),
                memory: memory_bytes / (1024 * 1024),
                pci_address,
            },
        ));
    }
    found.sort_by_key(|(number, _)| *number);
    Ok(found.into_iter().map(|(_, gpu)| gpu).collect())
}

/// Parses `xpu-smi discovery --json` (`{"device_list": [...]}`).
pub fn parse_xpu_smi(json: &str) -> Result<Vec<Gpu>, String> {
    let root: Value =
        serde_json::from_str(json).map_err(|e| format!("xpu-smi output is not JSON: {e}"))?;
    let Some(devices) = root.get("device_list") else {
        return Ok(Vec::new());
    };
    let devices = devices
        .as_array()
        .ok_or_else(|| "xpu-smi device_list is not a list".to_string())?;
    let mut gpus = Vec::with_capacity(devices.len());
    for (position, device) in devices.iter().enumerate() {
        if let Some(kind) = device.get("device_type").map(value_to_string) {
            if !kind.is_empty() && !kind.eq_ignore_ascii_case("GPU") {
                continue;
            }
        }
        let index = device
            .get("device_id")
            .and_then(|v| value_to_string(v).parse::<u64>().ok())
            .unwrap_or(position as u64);
        let name = device
            .get("device_name")
            .map(value_to_string)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "Intel GPU".to_string());
        let memory_bytes = device
            .get("memory_physical_size_byte")
            .and_then(|v| value_to_string(v).parse::<u64>().ok())
            .unwrap_or(0);
        let pci_address = device
            .get("pci_bdf_address")
            .map(|v| normalise_pci_address(&value_to_string(v)))
            .unwrap_or_default();
        gpus.push(Gpu {
            index,
            name,
            vendor: VENDOR_INTEL.to_string(),
            memory: memory_bytes / (1024 * 1024),
            pci_address,
        });
    }
    Ok(gpus)
}

fn value_to_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Lower-cases a PCI address and shortens NVML's 8-digit domain (`00000000:19:00.0`) to 4 digits.
fn normalise_pci_address(address: &str) -> String {
    let address = address.trim().to_ascii_lowercase();
    match address.split_once(':') {
        Some((domain, rest)) if domain.len() == 8 && domain.starts_with("0000") => {
            format!("{}:{rest}", &domain[4..])
        }
        _ => address,
    }
}

/// Runs `probes` in order and returns all GPUs found, renumbered `0..n`; a failing probe is logged and skipped.
pub fn detect_gpus_with(probes: &[&dyn GpuProbe]) -> Vec<Gpu> {
    let mut gpus = Vec::new();
    for probe in probes {
        match probe.detect() {
            Ok(found) => gpus.extend(found),
            Err(reason) => tracing::warn!(%reason, "GPU detection failed"),
        }
    }
    for (index, gpu) in gpus.iter_mut().enumerate() {
        gpu.index = index as u64;
    }
    gpus
}

/// The GPUs of this machine, from NVML, `rocm-smi` and `xpu-smi`.
pub fn detect_gpus() -> Vec<Gpu> {
    detect_gpus_with(&[&NvmlProbe, &RocmSmiProbe, &XpuSmiProbe])
}

/// Node labels describing GPUs: `GPU-<index>` = name (for example `GPU-0` = `NVIDIA H200`), and
/// `GPU-<index>-Memory` = memory in MiB with an `MiB` suffix (for example `143771MiB`) when known.
/// The model name already starts with the vendor for NVIDIA and AMD tools; when it does not, the vendor
/// is prefixed so that labels are comparable across vendors.
pub fn gpu_labels(gpus: &[Gpu]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for gpu in gpus {
        let name = if gpu.vendor.is_empty()
            || gpu
                .name
                .to_ascii_lowercase()
                .starts_with(&gpu.vendor.to_ascii_lowercase())
        {
            gpu.name.clone()
        } else {
            format!("{} {}", gpu.vendor, gpu.name)
        };
        labels.insert(format!("GPU-{}", gpu.index), name);
        if gpu.memory > 0 {
            labels.insert(
                format!("GPU-{}-Memory", gpu.index),
                format!("{}MiB", gpu.memory),
            );
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROCM_SMI_SAMPLE: &str = r#"{
        "card0": {"PCI Bus": "0000:C1:00.0", "VRAM Total Memory (B)": "68702699520",
                  "VRAM Total Used Memory (B)": "10960896", "Card series": "AMD Instinct MI210",
                  "Card model": "0x0740", "Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]",
                  "Card SKU": "D67301"},
        "card1": {"PCI Bus": "0000:C2:00.0", "VRAM Total Memory (B)": "68702699520",
                  "VRAM Total Used Memory (B)": "10960896", "Card series": "AMD Instinct MI210",
                  "Card model": "0x0740", "Card vendor": "Advanced Micro Devices, Inc. [AMD/ATI]",
                  "Card SKU": "D67301"},
        "system": {"Driver version": "6.2.4"}
    }"#;

    const XPU_SMI_SAMPLE: &str = r#"{
        "device_list": [
            {"device_function_type": "physical", "device_id": 0,
             "device_name": "Intel(R) Data Center GPU Max 1550", "device_type": "GPU",
             "drm_device": "/dev/dri/card1", "pci_bdf_address": "0000:29:00.0",
             "pci_device_id": "0xbd5", "uuid": "01000000-0000-0000-0000-000000290000",
             "vendor_name": "Intel(R) Corporation", "memory_physical_size_byte": "68719476736"}
        ]
    }"#;

    #[test]
    fn parses_rocm_smi_cards_in_order_and_skips_system() {
        let gpus = parse_rocm_smi(ROCM_SMI_SAMPLE).unwrap();
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "AMD Instinct MI210");
        assert_eq!(gpus[0].vendor, VENDOR_AMD);
        assert_eq!(gpus[0].memory, 65520);
        assert_eq!(gpus[0].pci_address, "0000:c1:00.0");
        assert_eq!(gpus[1].index, 1);
    }

    #[test]
    fn parses_xpu_smi_discovery() {
        let gpus = parse_xpu_smi(XPU_SMI_SAMPLE).unwrap();
        assert_eq!(gpus.len(), 1);
        assert_eq!(gpus[0].name, "Intel(R) Data Center GPU Max 1550");
        assert_eq!(gpus[0].vendor, VENDOR_INTEL);
        assert_eq!(gpus[0].memory, 65536);
        assert_eq!(gpus[0].pci_address, "0000:29:00.0");
    }

    #[test]
    fn bad_tool_output_is_an_error_not_a_panic() {
        assert!(parse_rocm_smi("not json").is_err());
        assert!(parse_rocm_smi("[1]").is_err());
        assert!(parse_xpu_smi(r#"{"device_list": 3}"#).is_err());
        assert_eq!(parse_xpu_smi("{}").unwrap(), Vec::new());
    }

    #[test]
    fn nvml_bus_ids_are_normalised() {
        assert_eq!(normalise_pci_address("00000000:19:00.0"), "0000:19:00.0");
        assert_eq!(normalise_pci_address("0000:AB:00.0"), "0000:ab:00.0");
    }

    struct FakeProbe(Result<Vec<Gpu>, String>);

    impl GpuProbe for FakeProbe {
        fn detect(&self) -> Result<Vec<Gpu>, String> {
            self.0.clone()
        }
    }

    fn gpu(index: u64, name: &str, vendor: &str, memory: u64) -> Gpu {
        Gpu {
            index,
            name: name.to_string(),
            vendor: vendor.to_string(),
            memory,
            pci_address: String::new(),
        }
    }

    #[test]
    fn detect_combines_probes_renumbers_and_skips_failures() {
        let nvidia = FakeProbe(Ok(vec![gpu(0, "NVIDIA H200", VENDOR_NVIDIA, 143771)]));
        let broken = FakeProbe(Err("rocm-smi exited with 1".into()));
        let intel = FakeProbe(Ok(vec![gpu(
            0,
            "Data Center GPU Max 1550",
            VENDOR_INTEL,
            0,
        )]));
        let gpus = detect_gpus_with(&[&nvidia, &broken, &intel]);
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[1].index, 1);
        let labels = gpu_labels(&gpus);
        assert_eq!(labels["GPU-0"], "NVIDIA H200");
        assert_eq!(labels["GPU-0-Memory"], "143771MiB");
        assert_eq!(labels["GPU-1"], "Intel Data Center GPU Max 1550");
        assert!(!labels.contains_key("GPU-1-Memory"));
    }

    #[test]
    fn real_detection_does_not_fail_without_gpus() {
        // Whatever this machine has, detection returns a list rather than panicking.
        let gpus = detect_gpus();
        for (i, gpu) in gpus.iter().enumerate() {
            assert_eq!(gpu.index, i as u64);
        }
    }
}
