"""Image specs, builds, the artifact store and external image intake."""
