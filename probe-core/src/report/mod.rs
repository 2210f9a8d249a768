//! Result types (serde) shared by the CLI, the agent and library users: the JSON schema.

pub mod trace;
