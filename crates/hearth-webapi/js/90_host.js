// Hooks for the embedding runtime; see the contract at the top of lib.rs.
ObjectDefineProperty(global, "__hearth_webapi", {
  value: Object.freeze({
    makeRequest: typeof hostMakeRequest === "function" ? hostMakeRequest : undefined,
    responseParts: typeof hostResponseParts === "function" ? hostResponseParts : undefined,
    readChunk: typeof hostReadChunk === "function" ? hostReadChunk : undefined,
    isResponse: typeof hostIsResponse === "function" ? hostIsResponse : undefined,
  }),
  writable: false, enumerable: false, configurable: false,
});
