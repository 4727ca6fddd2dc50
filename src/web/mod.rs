//! TODO

pub mod onboarding;
