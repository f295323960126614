// 80_crypto
