"""The registries and the public functions: which backend takes an array (:mod:`.backends`),
which losses exist (:mod:`.registry`), and ``grad`` / ``value_and_grad`` (:mod:`.functions`)."""
