package clientconfig

// Context returns the named context, or nil.
func (f *File) Context(name string) *Context {
	for i := range f.Contexts {
		if f.Contexts[i].Name == name {
			return &f.Contexts[i]
		}
	}
	return nil
}

// Cluster returns the named cluster, or nil.
func (f *File) Cluster(name string) *Cluster {
	for i := range f.Clusters {
		if f.Clusters[i].Name == name {
			return &f.Clusters[i]
		}
	}
	return nil
}

// User returns the named user, or nil.
func (f *File) User(name string) *User {
	for i := range f.Users {
		if f.Users[i].Name == name {
			return &f.Users[i]
		}
	}
	return nil
}

// EnsureContext returns the named context, creating it when missing with
// cluster "<name>-cluster" (base URL baseURL) and user "<name>-user" (type
// no-auth); an existing cluster or user of that name is reused. The first
// context becomes the current one. created reports whether the context was
// new. The returned pointer is valid until the next change to f.Contexts.
func (f *File) EnsureContext(name, baseURL string) (ctx *Context, created bool) {
	if c := f.Context(name); c != nil {
		return c, false
	}
	clusterName, userName := name+"-cluster", name+"-user"
	if f.Cluster(clusterName) == nil {
		f.Clusters = append(f.Clusters, Cluster{Name: clusterName, BaseURL: baseURL})
	}
	if f.User(userName) == nil {
		f.Users = append(f.Users, User{Name: userName, Type: UserTypeNoAuth})
	}
	f.Contexts = append(f.Contexts, Context{Name: name, Cluster: clusterName, User: userName})
	if f.CurrentContext == "" {
		f.CurrentContext = name
	}
	return &f.Contexts[len(f.Contexts)-1], true
}
