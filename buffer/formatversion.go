package buffer

// FormatVersion is the store file format this build writes; it opens files
// of older formats (upgrading them) but refuses newer ones (ErrFormatVersion).
// Firmware manifests carry it, so that a gateway refuses a build that could
// not read its store.
const FormatVersion = formatVersion
