// Hooks for the embedding runtime; see the contract at the top of lib.rs.
ObjectDefineProperty(global, "__hearth_webapi", {
  value: Object.freeze({
    makeRequest: hostMakeRequest,
    responseParts: hostResponseParts,
    readChunk: hostReadChunk,
    cancelChunks: hostCancelChunks,
    isResponse: hostIsResponse,
    makeResponse: hostMakeResponse,
    requestParts: hostRequestParts,
    newStream: hostNewStream,
    codec: structuredCodec,
    // Synchronous hashing for node:crypto's createHash/createHmac/pbkdf2Sync.
    nodeCrypto: Object.freeze({
      digest: native.digest,
      hmac: native.hmac,
      pbkdf2: native.pbkdf2,
      timingSafeEqual: native.timingSafeEqual,
    }),
  }),
  writable: false, enumerable: false, configurable: false,
});
