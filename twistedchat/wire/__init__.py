"""The wire format and naming rules every side shares: messages, numerics, names and masks, fitting."""
