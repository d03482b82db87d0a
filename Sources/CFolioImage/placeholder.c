// Placeholder: the image shim (issue 3).
