use thiserror::Error;

/// Errors from validating identifiers and from the register codec.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelError {
    #[error("{kind} {value:?} is not a valid name: use 1 to 64 characters from A-Z a-z 0-9 _ . -")]
    InvalidName { kind: &'static str, value: String },
    #[error("{data_type} needs {needed} registers, got {got}")]
    ShortRegisters { data_type: DataTypeName, needed: usize, got: usize },
    #[error("value {value} does not fit in {data_type}")]
    OutOfRange { data_type: DataTypeName, value: String },
    #[error("unknown quality {0:?}")]
    UnknownQuality(String),
    #[error("unknown {kind} {value:?}; expected one of: {expected}")]
    UnknownName { kind: &'static str, value: String, expected: &'static str },
}

/// The config spelling of a data type, carried in errors so they read as the user wrote them.
pub type DataTypeName = &'static str;
