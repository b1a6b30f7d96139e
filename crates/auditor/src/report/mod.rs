//! How a diagnosis leaves the library for delivery: [`sns`] builds the SNS publish (subject,
//! body, attributes) that the live crate sends.

pub mod sns;
