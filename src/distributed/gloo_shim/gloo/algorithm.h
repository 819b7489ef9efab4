// See ../README.md (gloo_shim): declarations only, enough for ProcessGroupGloo.hpp.
#pragma once
