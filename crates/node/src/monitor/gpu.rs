//! GPU sampling through NVML (`nvml-wrapper`, which opens `libnvidia-ml` at run time: the build
//! needs no CUDA). A machine without NVIDIA's driver, or without a GPU, has zero GPUs: the
//! sampler says so once, at its start, and never fails because of it.
//!
//! Each GPU is named by its index and model, never by its serial or UUID (which would identify
//! the operator's hardware in metrics). A GPU whose figures cannot be read in one sample (it
//! fell off the bus, the driver reset it) is left out of that sample, and the sampler reports it
//! as lost until it is seen again.

use std::collections::BTreeMap;

use nvml_wrapper::{Nvml, enum_wrappers::device::TemperatureSensor};
use serde::{Deserialize, Serialize};

/// One GPU at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuSample {
    /// NVML's index of the GPU.
    pub index: u32,
    /// The model (`NVIDIA GeForce RTX 4090`).
    pub model: String,
    /// Share of the last sample period a kernel was running, percent.
    pub utilisation_percent: u32,
    /// Memory allocated, bytes.
    pub memory_used_bytes: u64,
    /// Memory installed, bytes.
    pub memory_total_bytes: u64,
    /// Die temperature, °C.
    pub temperature_celsius: u32,
    /// Power draw, milliwatts, when the GPU reports it.
    pub power_milliwatts: Option<u32>,
    /// Processes running compute work on it (pids).
    pub processes: Vec<u32>,
}

impl GpuSample {
    /// Memory in use, percent; `None` when the total is unknown.
    pub fn memory_used_percent(&self) -> Option<f64> {
        (self.memory_total_bytes > 0)
            .then(|| self.memory_used_bytes as f64 * 100.0 / self.memory_total_bytes as f64)
    }
}

/// A GPU seen in an earlier sample and missing from this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostGpu {
    /// NVML's index of the GPU.
    pub index: u32,
    /// Its model, as last seen.
    pub model: String,
}

/// Keeps NVML open between samples, and the GPUs seen so far.
pub struct GpuSampler {
    nvml: Option<Nvml>,
    seen: BTreeMap<u32, String>,
}

impl std::fmt::Debug for GpuSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuSampler")
            .field("nvml", &self.nvml.is_some())
            .field("seen", &self.seen)
            .finish()
    }
}

impl GpuSampler {
    /// Opens NVML; without it (no driver, no library) the sampler reports no GPUs, and says why
    /// once.
    pub fn open() -> Self {
        // Said once per process: the node opens NVML for its resources and for its monitor,
        // and a devnet runs several nodes.
        static SAID: std::sync::Once = std::sync::Once::new();
        let nvml = match Nvml::init() {
            Ok(nvml) => {
                let count = nvml.device_count().unwrap_or(0);
                SAID.call_once(|| {
                    tracing::info!(gpus = count, "NVML opened: sampling {count} NVIDIA GPU(s)");
                });
                Some(nvml)
            }
            Err(e) => {
                SAID.call_once(|| {
                    tracing::info!("no NVIDIA GPU is sampled (NVML is not available: {e}): 0 GPUs");
                });
                None
            }
        };
        Self { nvml, seen: BTreeMap::new() }
    }

    /// Reads every GPU now; blocks for the length of the NVML calls.
    pub fn sample(&mut self) -> (Vec<GpuSample>, Vec<LostGpu>) {
        let gpus = self.nvml.as_ref().map(read_all).unwrap_or_default();
        let lost = self.track(&gpus);
        (gpus, lost)
    }

    /// Remembers the GPUs of `gpus`; returns those seen before and missing now.
    fn track(&mut self, gpus: &[GpuSample]) -> Vec<LostGpu> {
        for gpu in gpus {
            self.seen.insert(gpu.index, gpu.model.clone());
        }
        self.seen
            .iter()
            .filter(|(index, _)| gpus.iter().all(|g| g.index != **index))
            .map(|(index, model)| LostGpu { index: *index, model: model.clone() })
            .collect()
    }
}

/// Every GPU NVML can read; one that fails a read is left out.
fn read_all(nvml: &Nvml) -> Vec<GpuSample> {
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .filter_map(|index| {
            let read = || -> Result<GpuSample, nvml_wrapper::error::NvmlError> {
                let device = nvml.device_by_index(index)?;
                let memory = device.memory_info()?;
                Ok(GpuSample {
                    index,
                    model: device.name()?,
                    utilisation_percent: device.utilization_rates()?.gpu,
                    memory_used_bytes: memory.used,
                    memory_total_bytes: memory.total,
                    temperature_celsius: device.temperature(TemperatureSensor::Gpu)?,
                    power_milliwatts: device.power_usage().ok(),
                    processes: device
                        .running_compute_processes()
                        .map(|ps| ps.iter().map(|p| p.pid).collect())
                        .unwrap_or_default(),
                })
            };
            read().map_err(|e| tracing::debug!(index, "cannot read GPU {index}: {e}")).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32) -> GpuSample {
        GpuSample {
            index,
            model: "NVIDIA L4".into(),
            memory_used_bytes: 6 << 30,
            memory_total_bytes: 24 << 30,
            ..GpuSample::default()
        }
    }

    #[test]
    fn without_nvml_there_are_no_gpus_and_no_error() {
        // Opening never fails. Where NVML cannot be opened (this machine: no NVIDIA driver),
        // that is zero GPUs; where it can, every GPU read has a model and its memory.
        let mut sampler = GpuSampler::open();
        let (gpus, lost) = sampler.sample();
        assert!(lost.is_empty(), "{lost:?}");
        if Nvml::init().is_err() {
            assert!(gpus.is_empty(), "{gpus:?}");
        }
        for gpu in &gpus {
            assert!(!gpu.model.is_empty() && gpu.memory_used_bytes <= gpu.memory_total_bytes);
        }
    }

    #[test]
    fn a_gpu_that_vanishes_is_lost_until_it_comes_back() {
        let mut sampler = GpuSampler { nvml: None, seen: BTreeMap::new() };
        assert!(sampler.track(&[gpu(0), gpu(1)]).is_empty());
        let lost = sampler.track(&[gpu(0)]);
        assert_eq!(lost, [LostGpu { index: 1, model: "NVIDIA L4".into() }]);
        assert_eq!(sampler.track(&[gpu(0)]).len(), 1, "still lost");
        assert!(sampler.track(&[gpu(0), gpu(1)]).is_empty(), "back");
        assert_eq!(gpu(0).memory_used_percent(), Some(25.0));
    }
}
