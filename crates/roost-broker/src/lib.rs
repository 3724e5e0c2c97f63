//! Tokio wiring of the Roost MQTT broker: listeners, connection drivers, registry, timers.
