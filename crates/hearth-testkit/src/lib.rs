//! Test support used by the tests of several crates, kept in one place
//! because test trees cannot share modules by path. Only a
//! dev-dependency: nothing here is linked into the `hearth` binary.

pub mod s3_double;
