package main

import "madoguchi/internal/campaign"

// diskFiller is the disk-full injector; nil until internal/faults/diskfill is in this tree.
func diskFiller() campaign.DiskFiller { return nil }
