//! Sans-IO per-client MQTT session state machine.
