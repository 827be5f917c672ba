// Package modload loads and unloads the kushm kernel module from Go
// (finit_module and delete_module through internal/sys) and
// reports whether it is loaded.
//
// Errors: Load and Unload wrap a sentinel that says why, so callers can
// tell the cases apart with errors.Is: ErrPermission (not root, or
// CAP_SYS_MODULE missing), ErrSignature (module signature enforcement
// refused an unsigned module), ErrVersionMagic (built for another
// kernel), ErrLoaded (already loaded), ErrNotLoaded, ErrBusy (in use: a
// process has the region open or mapped), ErrModulesDisabled (the kernel
// booted with module loading off, or kernel.modules_disabled=1). Every
// error also names the module file and the operation.
//
// Nothing here holds resources between calls.
package modload
