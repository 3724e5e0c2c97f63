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

    /// The last samples taken under `name` of each process, in the order
    /// of `--broker-pid` (empty for a single process).
    pub fn each(&self, name: &str) -> Vec<ProcSample> {
        (0..)
            .map_while(|i| self.get(&format!("{name}#{i}")))
            .collect()
    }
}

/// Samples the broker process(es).
#[derive(Debug, Clone)]
pub struct BrokerProbe {
    /// The broker's process ids (the nodes of a cluster: their use is summed).
    pub pids: Vec<u32>,
}

impl BrokerProbe {
    /// A probe of `pids`, or none when the list is empty. Checks that every
    /// process can be read now, so a wrong pid fails the run up front instead
    /// of leaving the figures silently empty.
    pub fn new(pids: &[u32]) -> anyhow::Result<Option<Self>> {
        if pids.is_empty() {
            return Ok(None);
        }
        for &pid in pids {
            procstat::sample(Some(pid))?;
        }
        Ok(Some(Self {
            pids: pids.to_vec(),
        }))
    }

    /// Takes a sample under `name`: the sum over the processes; with more
    /// than one process, each one's also, under `name#i` (`i`: its place
    /// in the list, see [`Samples::each`]). A failure (a broker died) is
    /// reported, not fatal.
    pub fn sample(&self, name: &str, samples: &mut Samples) {
        let mut sum = ProcSample::default();
        let mut each = Vec::with_capacity(self.pids.len());
        for &pid in &self.pids {
            match procstat::sample(Some(pid)) {
                Ok(s) => {
                    sum.cpu_s += s.cpu_s;
                    sum.rss_bytes += s.rss_bytes;
                    sum.hwm_bytes += s.hwm_bytes;
                    sum.runqueue_wait_s += s.runqueue_wait_s;
                    each.push(s);
                }
                Err(e) => {
                    eprintln!("roost-bench: cannot sample broker pid {pid}: {e:#}");
                    return;
                }
            }
        }
        samples.0.push((name.to_owned(), sum));
        if each.len() > 1 {
            for (i, s) in each.into_iter().enumerate() {
                samples.0.push((format!("{name}#{i}"), s));
            }
        }
    }
}
