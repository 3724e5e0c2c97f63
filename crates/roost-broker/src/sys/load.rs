//! Mosquitto's `$SYS/broker/load/...` averages: a rate per minute over the
//! last interval, exponentially damped over 1, 5 and 15 minutes (as the
//! load average of a Unix system), each printed with two decimals and
//! published when it moved by at least 0.01.

/// The three damping periods, in seconds (the topics' `1min`, `5min`, `15min`).
const PERIODS: [f64; 3] = [60.0, 300.0, 900.0];

/// One counter's three damped averages.
#[derive(Debug, Default, Clone)]
pub(super) struct Load {
    /// The value of the counter at the last update.
    last_count: u64,
    /// The averages per period, in `PERIODS` order.
    averages: [f64; 3],
}

impl Load {
    /// A load whose counter stands at `count` now.
    pub(super) fn starting_at(count: u64) -> Self {
        Self {
            last_count: count,
            averages: [0.0; 3],
        }
    }

    /// Folds in the counter's new value `count`, `elapsed_s` seconds after
    /// the last update, and returns the new averages. Mosquitto's formula:
    /// `rate = delta * 60 / elapsed`, `new = rate + e^(-elapsed/period) *
    /// (old - rate)`.
    pub(super) fn update(&mut self, count: u64, elapsed_s: f64) -> [f64; 3] {
        let delta = count.saturating_sub(self.last_count);
        self.last_count = count;
        if elapsed_s <= 0.0 {
            return self.averages;
        }
        let rate = delta as f64 * 60.0 / elapsed_s;
        for (average, period) in self.averages.iter_mut().zip(PERIODS) {
            let exponent = (-elapsed_s / period).exp();
            *average = rate + exponent * (*average - rate);
        }
        self.averages
    }
}

/// Mosquitto's format of a load: two decimals.
pub(super) fn format(value: f64) -> String {
    format!("{value:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_converges_to_its_per_minute_value() {
        let mut load = Load::starting_at(0);
        let mut count = 0;
        let mut averages = [0.0; 3];
        // 10 messages a second for three hours (twelve 15-minute periods),
        // in 10 s steps.
        for _ in 0..1080 {
            count += 100;
            averages = load.update(count, 10.0);
        }
        for average in averages {
            assert!((average - 600.0).abs() < 1.0, "{averages:?}");
        }
    }

    #[test]
    fn the_one_minute_average_reacts_first() {
        let mut load = Load::starting_at(0);
        let averages = load.update(600, 10.0);
        // 3,600 per minute over the interval; damped by e^(-10/60) etc.
        let expected_1 = 3600.0 * (1.0 - (-10.0_f64 / 60.0).exp());
        assert!((averages[0] - expected_1).abs() < 1e-6);
        assert!(averages[0] > averages[1] && averages[1] > averages[2]);
        assert_eq!(format(averages[0]), format!("{expected_1:.2}"));
    }

    #[test]
    fn a_silent_interval_decays() {
        let mut load = Load::starting_at(0);
        let first = load.update(600, 10.0);
        let second = load.update(600, 10.0);
        assert!(second[0] < first[0]);
        assert!((second[0] - first[0] * (-10.0_f64 / 60.0).exp()).abs() < 1e-9);
    }
}
