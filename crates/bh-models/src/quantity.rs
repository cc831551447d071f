//! Resource quantities: CPU (`250m`, `0.25`, `2`), bytes (`512Mb`, `1Gi`, `10KB`), GPU counts and percentages.
//!
//! Byte units follow go-humanize as Bacalhau uses it: `k`/`kB`/`KB`... are powers of 1000 and
//! `Ki`/`KiB`... powers of 1024, all case-insensitive, so `1Gb`, `1GB` and `1gb` mean the same.

use crate::error::{Error, Result};
use crate::job::ResourcesConfig;
use crate::node::Resources;

/// Parses a CPU quantity in cores: `250m` (millicores), `0.25`, `2`, `1.5`.
pub fn parse_cpu(input: &str) -> Result<f64> {
    let text = input.trim();
    if text.is_empty() {
        return Err(Error::invalid("empty CPU quantity"));
    }
    let (number, scale) = match text.strip_suffix('m') {
        Some(millis) => (millis.trim(), 1000.0),
        None => (text, 1.0),
    };
    let value: f64 = parse_decimal(number).ok_or_else(|| {
        Error::invalid(format!(
            "invalid CPU quantity '{input}': expected cores (e.g. 0.5, 2) or millicores (e.g. 250m)"
        ))
    })?;
    Ok(value / scale)
}

/// Parses a byte quantity: a plain number of bytes, or a number with a decimal (`kB`, `MB`, `Mb`,
/// `GB`, `TB`, `PB`, `EB`) or binary (`Ki`, `Mi`, `KiB`, `GiB`...) unit, case-insensitive.
pub fn parse_bytes(input: &str) -> Result<u64> {
    let text = input.trim();
    let bad = || {
        Error::invalid(format!(
            "invalid byte quantity '{input}': expected a number with an optional unit (e.g. 512Mb, 1Gb, 2GiB, 1024)"
        ))
    };
    if text.is_empty() {
        return Err(Error::invalid("empty byte quantity"));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value = parse_decimal(number).ok_or_else(bad)?;
    let multiplier = byte_unit_multiplier(unit.trim()).ok_or_else(bad)?;
    let bytes = value * multiplier;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(Error::invalid(format!(
            "byte quantity '{input}' is too large"
        )));
    }
    // Truncation, as go-humanize does.
    Ok(bytes as u64)
}

/// The multiplier for a byte unit, or None when the unit is unknown.
fn byte_unit_multiplier(unit: &str) -> Option<f64> {
    let lower = unit.to_ascii_lowercase();
    let decimal = |power: i32| Some(1000f64.powi(power));
    let binary = |power: i32| Some(1024f64.powi(power));
    match lower.as_str() {
        "" | "b" => Some(1.0),
        "k" | "kb" => decimal(1),
        "m" | "mb" => decimal(2),
        "g" | "gb" => decimal(3),
        "t" | "tb" => decimal(4),
        "p" | "pb" => decimal(5),
        "e" | "eb" => decimal(6),
        "ki" | "kib" => binary(1),
        "mi" | "mib" => binary(2),
        "gi" | "gib" => binary(3),
        "ti" | "tib" => binary(4),
        "pi" | "pib" => binary(5),
        "ei" | "eib" => binary(6),
        _ => None,
    }
}

/// A non-negative, finite decimal number without exponent or sign other than a leading `+`.
fn parse_decimal(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    let well_formed = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|c| *c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    if !well_formed {
        return None;
    }
    digits.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses a GPU count: a non-negative integer.
pub fn parse_gpu(input: &str) -> Result<u64> {
    let text = input.trim();
    text.parse::<u64>().map_err(|_| {
        Error::invalid(format!(
            "invalid GPU count '{input}': expected a whole number such as 0 or 1"
        ))
    })
}

/// Parses a percentage such as `85%` into a fraction (0.85); accepts 0% to 100%.
pub fn parse_capacity_fraction(input: &str) -> Result<f64> {
    let text = input.trim();
    let bad = || {
        Error::invalid(format!(
            "invalid percentage '{input}': expected a value from 0% to 100% (e.g. 85%)"
        ))
    };
    let number = text.strip_suffix('%').ok_or_else(bad)?;
    let value = parse_decimal(number.trim()).ok_or_else(bad)?;
    if value > 100.0 {
        return Err(bad());
    }
    Ok(value / 100.0)
}

/// Formats bytes for display the way go-humanize's `Bytes` does (`512 MB`, `1.5 GB`, `42 B`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 10 {
        return format!("{bytes} B");
    }
    let value = bytes as f64;
    let exponent = (value.ln() / 1000f64.ln()).floor().clamp(0.0, 6.0) as usize;
    let scaled = (value / 1000f64.powi(exponent as i32) * 10.0 + 0.5).floor() / 10.0;
    let unit = UNITS.get(exponent).copied().unwrap_or("EB");
    if scaled < 10.0 {
        format!("{scaled:.1} {unit}")
    } else {
        format!("{scaled:.0} {unit}")
    }
}

/// Formats CPU cores for display: whole or fractional cores (`2`, `0.5`), or millicores below one core
/// when that is exact (`250m`).
pub fn format_cpu(cores: f64) -> String {
    let millis = cores * 1000.0;
    if cores < 1.0 && cores > 0.0 && (millis - millis.round()).abs() < 1e-6 {
        return format!("{}m", millis.round() as u64);
    }
    let text = format!("{cores:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl ResourcesConfig {
    /// The absolute amounts these strings describe; empty fields are 0. Errors name the field
    /// (`CPU: invalid CPU quantity ...`).
    pub fn to_resources(&self) -> Result<Resources> {
        let problems = self.problems();
        if let Some(first) = problems.into_iter().reduce(|a, b| format!("{a}; {b}")) {
            return Err(Error::invalid(first));
        }
        Ok(Resources {
            cpu: optional(&self.cpu, parse_cpu)?,
            memory: optional(&self.memory, parse_bytes)?,
            disk: optional(&self.disk, parse_bytes)?,
            gpu: optional(&self.gpu, parse_gpu)?,
            gpus: Vec::new(),
        })
    }

    /// Every field that does not parse, as `Field: message` lines.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = optional(&self.cpu, parse_cpu) {
            problems.push(format!("CPU: {}", e.message));
        }
        if let Err(e) = optional(&self.memory, parse_bytes) {
            problems.push(format!("Memory: {}", e.message));
        }
        if let Err(e) = optional(&self.disk, parse_bytes) {
            problems.push(format!("Disk: {}", e.message));
        }
        if let Err(e) = optional(&self.gpu, parse_gpu) {
            problems.push(format!("GPU: {}", e.message));
        }
        problems
    }
}

impl Resources {
    /// The display form of these amounts (`CPU "0.5"`, `Memory "512 MB"`, ...); zero fields stay empty.
    pub fn to_config(&self) -> ResourcesConfig {
        let nonzero = |v: u64, f: fn(u64) -> String| if v == 0 { String::new() } else { f(v) };
        ResourcesConfig {
            cpu: if self.cpu == 0.0 {
                String::new()
            } else {
                format_cpu(self.cpu)
            },
            memory: nonzero(self.memory, format_bytes),
            disk: nonzero(self.disk, format_bytes),
            gpu: nonzero(self.gpu, |g| g.to_string()),
        }
    }
}

/// Parses `text` with `parse` unless it is blank, which means zero.
fn optional<T: Default>(text: &str, parse: fn(&str) -> Result<T>) -> Result<T> {
    if text.trim().is_empty() {
        Ok(T::default())
    } else {
        parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        assert_eq!(parse_cpu("250m").unwrap(), 0.25);
        assert_eq!(parse_cpu("0.25").unwrap(), 0.25);
        assert_eq!(parse_cpu("2").unwrap(), 2.0);
        assert_eq!(parse_cpu(" 1.5 ").unwrap(), 1.5);
        assert_eq!(parse_cpu("500m").unwrap(), 0.5);
        for bad in [
            "", "lots", "-1", "1e3", "m", "1..2", "2 cores", "NaN", "inf",
        ] {
            assert!(parse_cpu(bad).is_err(), "{bad} should not parse");
        }
        assert!(parse_cpu("lots").unwrap_err().message.contains("'lots'"));
    }

    #[test]
    fn byte_quantities() {
        let cases: &[(&str, u64)] = &[
            ("512Mb", 512_000_000),
            ("1Gb", 1_000_000_000),
            ("100mb", 100_000_000),
            ("1GB", 1_000_000_000),
            ("512Mi", 512 * 1024 * 1024),
            ("1Gi", 1024 * 1024 * 1024),
            ("2GiB", 2 * 1024 * 1024 * 1024),
            ("1024", 1024),
            ("1.5Gb", 1_500_000_000),
            ("10KB", 10_000),
            ("10kB", 10_000),
            ("1 Tb", 1_000_000_000_000),
            ("3Ki", 3072),
            ("0", 0),
            ("7b", 7),
        ];
        for (text, want) in cases {
            assert_eq!(parse_bytes(text).unwrap(), *want, "{text}");
        }
        for bad in ["", "Gb", "12 parsecs", "-1Gb", "1.2.3Mb", "99999999999EB"] {
            assert!(parse_bytes(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn gpus_and_percentages() {
        assert_eq!(parse_gpu("0").unwrap(), 0);
        assert_eq!(parse_gpu(" 2 ").unwrap(), 2);
        assert!(parse_gpu("1.5").is_err());
        assert!(parse_gpu("-1").is_err());
        assert!((parse_capacity_fraction("85%").unwrap() - 0.85).abs() < 1e-12);
        assert_eq!(parse_capacity_fraction("100%").unwrap(), 1.0);
        assert!(parse_capacity_fraction("85").is_err());
        assert!(parse_capacity_fraction("150%").is_err());
        assert!(parse_capacity_fraction("x%").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(9), "9 B");
        assert_eq!(format_bytes(512_000_000), "512 MB");
        assert_eq!(format_bytes(1_500_000_000), "1.5 GB");
        assert_eq!(format_bytes(82_854_982), "83 MB");
        assert_eq!(format_bytes(1024), "1.0 kB");
        assert_eq!(format_cpu(0.25), "250m");
        assert_eq!(format_cpu(2.0), "2");
        assert_eq!(format_cpu(1.5), "1.5");
        assert_eq!(parse_cpu(&format_cpu(0.125)).unwrap(), 0.125);
    }

    #[test]
    fn resources_config_conversion() {
        let config = ResourcesConfig {
            cpu: "250m".into(),
            memory: "1Gb".into(),
            disk: String::new(),
            gpu: "1".into(),
        };
        let resources = config.to_resources().unwrap();
        assert_eq!(resources.cpu, 0.25);
        assert_eq!(resources.memory, 1_000_000_000);
        assert_eq!(resources.disk, 0);
        assert_eq!(resources.gpu, 1);
        assert_eq!(resources.to_config().memory, "1.0 GB");
        assert_eq!(
            parse_bytes(&resources.to_config().memory).unwrap(),
            1_000_000_000
        );
        assert!(ResourcesConfig::default().to_resources().unwrap().is_zero());

        let bad = ResourcesConfig {
            cpu: "lots".into(),
            memory: "big".into(),
            ..Default::default()
        };
        let err = bad.to_resources().unwrap_err();
        assert!(err.message.starts_with("CPU: "), "{}", err.message);
        assert!(err.message.contains("Memory: "), "{}", err.message);
    }
}
