pub mod alert;
pub mod config;
pub mod decode;
pub mod detect;
pub mod event;
pub mod rules;
