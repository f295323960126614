// node:util/types — brand checks by the internal [[Class]] tag where JS has no better way.
const tag = (v) => Object.prototype.toString.call(v).slice(8, -1);
const TypedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
const typedArrayTag = Object.getOwnPropertyDescriptor(TypedArrayProto, Symbol.toStringTag).get;

export const isPromise = (v) => v instanceof Promise;
export const isDate = (v) => v instanceof Date;
export const isRegExp = (v) => v instanceof RegExp;
export const isMap = (v) => v instanceof Map;
export const isSet = (v) => v instanceof Set;
export const isWeakMap = (v) => v instanceof WeakMap;
export const isWeakSet = (v) => v instanceof WeakSet;
export const isArrayBuffer = (v) => v instanceof ArrayBuffer;
export const isSharedArrayBuffer = (v) => typeof SharedArrayBuffer !== 'undefined' && v instanceof SharedArrayBuffer;
export const isAnyArrayBuffer = (v) => isArrayBuffer(v) || isSharedArrayBuffer(v);
export const isArrayBufferView = (v) => ArrayBuffer.isView(v);
export const isDataView = (v) => v instanceof DataView;
export const isTypedArray = (v) => ArrayBuffer.isView(v) && typedArrayTag.call(v) !== undefined;
const ta = (name) => (v) => ArrayBuffer.isView(v) && typedArrayTag.call(v) === name;
export const isUint8Array = ta('Uint8Array');
export const isUint8ClampedArray = ta('Uint8ClampedArray');
export const isUint16Array = ta('Uint16Array');
export const isUint32Array = ta('Uint32Array');
export const isInt8Array = ta('Int8Array');
export const isInt16Array = ta('Int16Array');
export const isInt32Array = ta('Int32Array');
export const isFloat32Array = ta('Float32Array');
export const isFloat64Array = ta('Float64Array');
export const isBigInt64Array = ta('BigInt64Array');
export const isBigUint64Array = ta('BigUint64Array');
export const isAsyncFunction = (v) => typeof v === 'function' && (tag(v) === 'AsyncFunction' || tag(v) === 'AsyncGeneratorFunction');
export const isGeneratorFunction = (v) => typeof v === 'function' && (tag(v) === 'GeneratorFunction' || tag(v) === 'AsyncGeneratorFunction');
export const isGeneratorObject = (v) => tag(v) === 'Generator';
export const isMapIterator = (v) => tag(v) === 'Map Iterator';
export const isSetIterator = (v) => tag(v) === 'Set Iterator';
export const isNativeError = (v) => v instanceof Error;
export const isBoxedPrimitive = (v) => v !== null && typeof v === 'object' &&
  (v instanceof Number || v instanceof String || v instanceof Boolean || v instanceof BigInt || v instanceof Symbol);
export const isNumberObject = (v) => v instanceof Number;
export const isStringObject = (v) => v instanceof String;
export const isBooleanObject = (v) => v instanceof Boolean;
export const isBigIntObject = (v) => typeof BigInt !== 'undefined' && v instanceof BigInt;
export const isSymbolObject = (v) => v instanceof Symbol;
export const isWeakRef = (v) => typeof WeakRef !== 'undefined' && v instanceof WeakRef;
export const isProxy = () => false;
export const isExternal = () => false;
export const isModuleNamespaceObject = (v) => v !== null && typeof v === 'object' && tag(v) === 'Module';
export const isArgumentsObject = (v) => tag(v) === 'Arguments';
export const isKeyObject = () => false;
export const isCryptoKey = (v) => typeof CryptoKey !== 'undefined' && v instanceof CryptoKey;

const types = {
  isPromise, isDate, isRegExp, isMap, isSet, isWeakMap, isWeakSet, isArrayBuffer, isSharedArrayBuffer,
  isAnyArrayBuffer, isArrayBufferView, isDataView, isTypedArray, isUint8Array, isUint8ClampedArray,
  isUint16Array, isUint32Array, isInt8Array, isInt16Array, isInt32Array, isFloat32Array, isFloat64Array,
  isBigInt64Array, isBigUint64Array, isAsyncFunction, isGeneratorFunction, isGeneratorObject,
  isMapIterator, isSetIterator, isNativeError, isBoxedPrimitive, isNumberObject, isStringObject,
  isBooleanObject, isBigIntObject, isSymbolObject, isWeakRef, isProxy, isExternal,
  isModuleNamespaceObject, isArgumentsObject, isKeyObject, isCryptoKey,
};
export default types;
export { types as 'module.exports' };
