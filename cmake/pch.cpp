// Compiles cmake/pch.h once; every Torch-heavy target reuses the result.
