pub mod alert;
pub mod cli;
pub mod config;
pub mod decode;
pub mod detect;
pub mod event;
pub mod rules;
pub mod sinks;
