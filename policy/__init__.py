"""The dr-platform policy pack; `policy.policies` holds the rules (also run offline by `drctl plan`)."""
