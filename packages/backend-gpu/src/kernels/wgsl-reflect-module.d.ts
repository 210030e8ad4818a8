// wgsl_reflect's "main" is a CommonJS file inside a "type": "module" package, which Node and
// vitest refuse; tests import its ES module build directly, typed as the package's own types.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
