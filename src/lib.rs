pub mod decode;
pub mod event;
