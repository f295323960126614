// node:stream/web — the WHATWG stream classes the runtime has as globals.
export const ReadableStream = globalThis.ReadableStream;
export const ReadableStreamDefaultReader = globalThis.ReadableStreamDefaultReader;
export const ReadableStreamBYOBReader = globalThis.ReadableStreamBYOBReader;
export const ReadableStreamDefaultController = globalThis.ReadableStreamDefaultController;
export const WritableStream = globalThis.WritableStream;
export const WritableStreamDefaultWriter = globalThis.WritableStreamDefaultWriter;
export const WritableStreamDefaultController = globalThis.WritableStreamDefaultController;
export const TransformStream = globalThis.TransformStream;
export const TransformStreamDefaultController = globalThis.TransformStreamDefaultController;
export const ByteLengthQueuingStrategy = globalThis.ByteLengthQueuingStrategy;
export const CountQueuingStrategy = globalThis.CountQueuingStrategy;
export const TextEncoderStream = globalThis.TextEncoderStream;
export const TextDecoderStream = globalThis.TextDecoderStream;
export const CompressionStream = globalThis.CompressionStream;
export const DecompressionStream = globalThis.DecompressionStream;
const web = {
  ReadableStream, ReadableStreamDefaultReader, ReadableStreamBYOBReader, ReadableStreamDefaultController,
  WritableStream, WritableStreamDefaultWriter, WritableStreamDefaultController, TransformStream,
  TransformStreamDefaultController, ByteLengthQueuingStrategy, CountQueuingStrategy, TextEncoderStream,
  TextDecoderStream, CompressionStream, DecompressionStream,
};
export default web;
export { web as 'module.exports' };
