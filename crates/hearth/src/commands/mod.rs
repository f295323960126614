pub mod d1;
pub mod kv;
pub mod r2;
