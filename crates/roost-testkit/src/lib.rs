//! Test helpers for Roost: raw-packet MQTT client and fixtures.
