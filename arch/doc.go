// Package arch holds what the architecture generators share: the image
// value they produce (code, typed relocations, labels, frame layout) and
// the concrete addresses an image is rendered with.
package arch
