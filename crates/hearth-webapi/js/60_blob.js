// 60_blob
