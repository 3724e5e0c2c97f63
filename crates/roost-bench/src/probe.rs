//! Broker resource samples taken at phase boundaries (`--broker-pid`):
//! `base` before connecting, `connected`, `subscribed`, `warm` and `end`
//! around the measurement window. Differences between them give CPU per
//! message or per connection and memory per connection or subscription.

use serde::{Deserialize, Serialize};

use crate::procstat::{self, ProcSample};

/// Samples by phase name, in the order taken.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Samples(pub Vec<(String, ProcSample)>);

impl Samples {
    /// The last sample taken under `name`.
    pub fn get(&self, name: &str) -> Option<ProcSample> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
    }
}

/// Samples the broker process.
#[derive(Debug, Clone, Copy)]
pub struct BrokerProbe {
    /// The broker's process id.
    pub pid: u32,
}

impl BrokerProbe {
    /// Checks that the process can be read now, so a wrong pid fails the run
    /// up front instead of leaving the figures silently empty.
    pub fn new(pid: u32) -> anyhow::Result<Self> {
        procstat::sample(Some(pid))?;
        Ok(Self { pid })
    }

    /// Takes a sample under `name`; a failure (broker died) is reported, not fatal.
    pub fn sample(&self, name: &str, samples: &mut Samples) {
        match procstat::sample(Some(self.pid)) {
            Ok(s) => samples.0.push((name.to_owned(), s)),
            Err(e) => eprintln!("roost-bench: cannot sample broker pid {}: {e:#}", self.pid),
        }
    }
}
