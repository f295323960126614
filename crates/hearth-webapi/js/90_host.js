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
  }),
  writable: false, enumerable: false, configurable: false,
});
