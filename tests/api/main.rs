//! Black-box tests: real HTTP on 127.0.0.1 against the facade and simulated partners.

mod closing_proxy;
mod databases;
mod deployment;
mod harness;

mod audit;
mod auth;
mod chain;
mod cli;
mod conformance;
mod credentials;
mod errors;
mod faults;
mod formats;
mod gp_connect;
mod hardening;
mod legacy;
mod metadata;
mod mtls;
mod objection;
mod oidc;
mod paging;
mod patient;
mod policy;
mod policy_property;
mod postman;
mod read;
mod release;
mod search;
mod smart;
mod store;
mod types;
mod unicode_property;
